#!/usr/bin/env bash
# One command from a fresh clone: set up, then serve on the embedded defaults (SQLite in ./data,
# no API keys needed). Extra arguments go to `leadwarm serve` (e.g. --host 0.0.0.0 --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/leadwarm serve "$@"
