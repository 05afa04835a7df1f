#!/usr/bin/env bash
# Install curate and run the bundled sample end to end (output in out/sample).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate
curate run configs/sample.yaml "$@"
