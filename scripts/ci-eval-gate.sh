#!/usr/bin/env bash
# The CI regression gate (issue 4): run the small deterministic ci-smoke evaluation into a
# temporary directory and gate it against the committed baseline.
#
#   exit 0  the change keeps quality (and the budgets)       -> CI goes on
#   exit 1  a significant regression beyond tolerance, or a budget exceeded (reasons printed)
#   exit 2  invalid input, e.g. the data sets changed: rebuild the baseline on purpose with
#           scripts/ci-eval-gate.sh --update-baseline   (and commit evals/baselines/ci-smoke.json)
#
# The run is isolated from the developer's environment: no RAGKEEL_* variables and an empty
# settings file instead of ./ragkeel.yaml; everything it uses is in evals/ci-smoke.yaml. It runs
# from the repository root (so results.json records the git commit). The index lives in the
# config's own home (.ragkeel-eval/ci-smoke), reused between runs.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ragkeel="${RAGKEEL_BIN:-$repo/.venv/bin/ragkeel}"
config="$repo/evals/ci-smoke.yaml"
baseline="$repo/evals/baselines/ci-smoke.json"
gate="$repo/evals/gate.yaml"

update=()
if [[ "${1:-}" == "--update-baseline" ]]; then
    update=(--update-baseline)
elif [[ $# -gt 0 ]]; then
    echo "usage: $0 [--update-baseline]" >&2
    exit 2
fi

while read -r name; do unset "$name"; done < <(compgen -e | grep '^RAGKEEL_' || true)
out="$(mktemp -d "${TMPDIR:-/tmp}/ragkeel-ci-gate.XXXXXX")"
trap 'rm -rf "$out"' EXIT
echo '{}' >"$out/empty-settings.yaml"
export RAGKEEL_CONFIG="$out/empty-settings.yaml"
cd "$repo"

"$ragkeel" eval run "$config" --out "$out/run"
"$ragkeel" eval gate --baseline "$baseline" --current "$out/run/results.json" \
    --config "$gate" "${update[@]}"
