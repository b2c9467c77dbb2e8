#!/usr/bin/env bash
# Run the test suite in the environment made by tools/setup_env.sh.
#
#   bash tools/run_tests.sh [pytest arguments]     (MMSEG_TAO_VENV or --venv DIR as in setup)
#
# Without pytest arguments: the whole suite over one pytest-xdist worker per core, at most 4
# (MMSEG_TAO_TEST_WORKERS overrides; 0 or 1: one process), whole test files per worker so that
# module fixtures are built once. Most of the suite starts processes that spend seconds on
# imports on one core; two workers on the 2-core CI machine took 991 s against 1600 s for one.
# With arguments: pytest with exactly those.
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
if [ $# -eq 0 ]; then
  workers=${MMSEG_TAO_TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}
  case $workers in
    '' | *[!0-9]*)
      echo "run_tests.sh: MMSEG_TAO_TEST_WORKERS=$workers: expected a number of workers (0 or 1: one process)" >&2
      exit 2 ;;
  esac
  [ -n "${MMSEG_TAO_TEST_WORKERS:-}" ] || [ "$workers" -le 4 ] || workers=4
  if [ "$workers" -gt 1 ]; then
    set -- -n "$workers" --dist loadfile
  fi
fi
exec "$VENV/bin/python" -m pytest "$@"
