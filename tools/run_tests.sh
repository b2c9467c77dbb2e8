#!/usr/bin/env bash
# Run the test suite in the environment made by tools/setup_env.sh.
#
#   bash tools/run_tests.sh [pytest arguments]     (MMSEG_TAO_VENV or --venv DIR as in setup)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMSEG_TAO_VENV:-$REPO/.venv}
if [ "${1:-}" = --venv ]; then VENV=$2; shift 2; fi
if [ ! -f "$VENV/.mmseg-tao-ready" ]; then
  echo "run_tests.sh: no complete environment at $VENV (missing $VENV/.mmseg-tao-ready)." >&2
  echo "Run 'bash tools/setup_env.sh' first; it marks the environment ready only when every step passed." >&2
  exit 2
fi
cd "$REPO"
exec "$VENV/bin/python" -m pytest "$@"
