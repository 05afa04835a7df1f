#!/usr/bin/env bash
# The lint gates (CI runs them before pytest): ruff check, ruff format --check, mypy on the four packages,
# import-linter's contracts. All configured in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${VIRTUAL_ENV:-}" ] || . .venv/bin/activate
paths=(core pipeline dedup filters refiners tests scripts)
ruff check "${paths[@]}"
ruff format --check "${paths[@]}"
# mypy must see the folders under their package names (pyproject maps core/ -> curate.core, ...): a link farm
farm=build/lint
rm -rf "$farm" && mkdir -p "$farm/curate"
for d in core pipeline dedup filters refiners; do ln -s "../../../$d" "$farm/curate/$d"; done
: > "$farm/curate/__init__.py"
(cd "$farm" && mypy --config-file ../../pyproject.toml --cache-dir ../mypy-cache curate)
lint-imports
echo "lint: clean"
