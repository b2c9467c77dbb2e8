# shellcheck shell=bash
# What tools/setup_env.sh, tools/fill_wheelhouse.sh and tools/test_offline_install.sh share,
# written once: the pinned versions (from requirements/pins.txt), the venv and cache paths,
# usage errors and the timed step runner. Sourced, not run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/env_common.sh"
#
# The sourcing script sets SCRIPT (its name in messages) and USAGE (its usage line) first.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PINS_FILE=$REPO/requirements/pins.txt

# pin NAME -> the version requirements/pins.txt pins NAME to (fails when it has none).
pin() {
  local version
  version=$(sed -nE "s/^$1==([^[:space:]#]+).*/\1/p" "$PINS_FILE")
  [ -n "$version" ] || { echo "${SCRIPT:-env_common.sh}: no '$1==' line in $PINS_FILE" >&2; return 1; }
  echo "$version"
}
MMCV_VERSION=$(pin mmcv)
MMENGINE_VERSION=$(pin mmengine)
MMSEG_VERSION=$(pin mmsegmentation)
MMDEPLOY_VERSION=$(pin mmdeploy)
# The quantize task's libraries (requirements/quantize.txt).
QUANTIZE_PINS="nvidia-modelopt==$(pin nvidia-modelopt) torchao==$(pin torchao) requests==$(pin requests)"
DEFAULT_TORCH_SPEC="torch==$(pin torch) torchvision==$(pin torchvision)"

# Paths. The venv of the set-up (tools/run_tests.sh and tools/lint.sh default to the same
# .venv), the marker of a complete set-up, and the cache of built mmcv wheels, laid out as
# $MMCV_CACHE/torch<version>-cp<XY>-cuda<0|1>/mmcv-*.whl; a wheelhouse holds the same layout
# under DIR/$MMCV_SUBDIR/.
DEFAULT_VENV=$REPO/.venv
READY_NAME=.mmseg-tao-ready
CACHE_DIR=${MMSEG_TAO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mmseg-tao}
MMCV_SUBDIR=mmcv-$MMCV_VERSION
MMCV_CACHE=$CACHE_DIR/$MMCV_SUBDIR
PYTHON=${PYTHON:-python3}

# The comment block at the top of the sourcing script (its --help), then the pins.
usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  echo
  echo "Pinned versions (requirements/pins.txt): $(grep -vE '^(#|$)' "$PINS_FILE" | paste -sd ' ')"
}

# A mistake in the arguments: one line naming the script and its usage, exit 2.
die() {
  echo "$SCRIPT: $*${USAGE:+ (usage: $USAGE)}" >&2
  exit 2
}

# The timed step runner. run_step NAME COMMAND... runs COMMAND with its output in a log that
# is shown only when it fails; the step prints its name, duration and the note the command
# left (note TEXT) on one line, and adds that line to SUMMARY. The first failing step stops
# the script (set -E and the ERR trap that steps_begin installs): its name, exit status, the
# tail of its log, then FAIL_HINT when set. STEP_WIDTH is the width of the name column.
STEP="start"
STEP_LOG=""
STEP_WIDTH=${STEP_WIDTH:-28}
SUMMARY=()
steps_begin() {  # once, before the first run_step
  exec 3>&2  # the terminal's stderr, for messages written while a step's output is logged
  trap on_step_error ERR
}
on_step_error() {
  local rc=$?
  trap - ERR
  {
    echo
    echo "$SCRIPT: FAILED at step '$STEP' (exit $rc)."
    if [ -n "$STEP_LOG" ] && [ -s "$STEP_LOG" ]; then
      echo "--- last lines of $STEP_LOG (full log kept there) ---"
      grep -v 'is ignored: it is neither' "$STEP_LOG" | tail -n 40
    fi
    [ -z "${FAIL_HINT:-}" ] || echo "$FAIL_HINT"
  } >&3
  exit "$rc"
}

run_step() {
  STEP=$1
  shift
  local t0=$SECONDS note=""
  STEP_LOG=$(mktemp "${TMPDIR:-/tmp}/mmseg-tao-step.XXXXXX")
  printf "==> %-${STEP_WIDTH}s " "$STEP"
  "$@" >"$STEP_LOG" 2>&1
  [ -s "$STEP_LOG.note" ] && note=$(cat "$STEP_LOG.note")
  printf '%4ss  %s\n' "$((SECONDS - t0))" "$note"
  SUMMARY+=("$(printf "%-${STEP_WIDTH}s %5ss  %s" "$STEP" "$((SECONDS - t0))" "$note")")
  rm -f "$STEP_LOG" "$STEP_LOG.note"
  STEP_LOG=""
}
note() { echo "$*" >"$STEP_LOG.note"; }
