#!/usr/bin/env bash
# Install everything the tests need (see scripts/install.sh test), run the lint gates, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
. .venv/bin/activate
bash scripts/lint.sh
python -m pytest -q "$@"
