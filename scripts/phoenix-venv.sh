#!/usr/bin/env bash
# Arize Phoenix in a virtual environment of its own, outside the repo (its pins must not meet
# ours): the OTLP receiver the `phoenix` tests export to (tests/observability/test_phoenix.py).
# Idempotent: a venv that already has the pinned version is left alone. Prints the venv's python.
#   PHOENIX_VENV (default ~/.cache/ragkeel/phoenix-venv), PY (default python3.11)
set -euo pipefail
PHOENIX_VERSION=20.26.1
VENV="${PHOENIX_VENV:-$HOME/.cache/ragkeel/phoenix-venv}"
PY="${PY:-python3.11}"
STAMP="$VENV/.phoenix-$PHOENIX_VERSION"
if [[ ! -f "$STAMP" ]]; then
  echo "installing arize-phoenix $PHOENIX_VERSION into $VENV (once per machine)" >&2
  test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade "pip>=24" >&2
  "$VENV/bin/python" -m pip install --quiet "arize-phoenix==$PHOENIX_VERSION" >&2
  touch "$STAMP"
fi
echo "$VENV/bin/python"
