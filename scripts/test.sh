#!/usr/bin/env bash
# Install everything the tests need (see scripts/install.sh test) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
. .venv/bin/activate
python -m pytest -q "$@"
