#!/usr/bin/env bash
# Lint the repository with ruff (rules in ruff.toml) in the environment made by
# tools/setup_env.sh (ruff comes from requirements/tests.txt).
#
#   bash tools/lint.sh [ruff check arguments]     e.g. --fix (sorts imports), or FILE ...
#
# Without arguments it checks the whole repository. Exit 0: clean; 1: ruff found problems;
# 2: no ruff, or ruff could not run (e.g. a bad ruff.toml).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMSEG_TAO_VENV:-$REPO/.venv}
PY=$VENV/bin/python
if ! "$PY" -m ruff --version >/dev/null 2>&1; then
  echo "lint.sh: no ruff in $VENV; run 'bash tools/setup_env.sh' (it installs requirements/tests.txt)." >&2
  exit 2
fi
cd "$REPO"
echo "lint.sh: $("$PY" -m ruff --version), rules from ruff.toml"
rc=0
"$PY" -m ruff check "$@" || rc=$?
if [ "$rc" = 1 ]; then
  echo "lint.sh: ruff found problems; 'bash tools/lint.sh --fix' fixes the import order (I001)." >&2
fi
exit "$rc"
