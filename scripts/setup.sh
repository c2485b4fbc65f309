#!/usr/bin/env bash
# Sets up LeadWarm in ./.venv. `--dev` adds the test tools (pytest, ruff, mypy, import-linter and
# the Stoplight Prism mock server from npm, pinned in tools/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  if [ -f tools/package-lock.json ]; then
    npm ci --prefix tools --no-audit --no-fund --loglevel=error
  fi
else
  .venv/bin/python -m pip install --quiet -e .
fi
