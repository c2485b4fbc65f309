#!/usr/bin/env bash
# One command from a fresh clone: set up with the test tools, check the code, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
if ! command -v gcloud >/dev/null 2>&1 || ! dpkg -s google-cloud-cli-firestore-emulator >/dev/null 2>&1; then
  echo "installing the Firestore emulator (Debian package google-cloud-cli-firestore-emulator)" >&2
  (apt-get update -qq && apt-get install -y -qq google-cloud-cli-firestore-emulator) >&2 || \
    echo "warning: could not install the Firestore emulator; its tests will fail" >&2
fi
if ! command -v dovecot >/dev/null 2>&1; then
  echo "installing dovecot (the IMAP server the email tests talk to)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd) >&2 || \
    echo "warning: could not install dovecot-imapd; the IMAP tests will fail" >&2
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (the browser the web chat widget test and the dashboard journeys drive through Playwright)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >&2 || \
    echo "warning: could not install chromium; the browser tests will fail" >&2
fi
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check . >/dev/null
echo "== import contracts"; .venv/bin/lint-imports
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest -q "$@"
