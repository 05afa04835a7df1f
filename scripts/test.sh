#!/usr/bin/env bash
# Install everything the tests need (see scripts/install.sh test), run the lint gates, build the docs, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
. .venv/bin/activate
bash scripts/lint.sh
# the docs site: a broken link, a missing page or a page outside the nav fails (offline: nothing is fetched)
NO_MKDOCS_2_WARNING=1 mkdocs build --strict  # not --quiet: it hides the warnings that strict counts
# every test, the slow ones included (pyproject's addopts skip them in a plain `pytest`); the 20 slowest listed
python -m pytest -q -m "slow or not slow" --durations=20 "$@"
