#!/usr/bin/env bash
# Set up everything mmseg-tao needs in a virtual environment, on a fresh machine or again.
#
#   bash tools/setup_env.sh [--venv DIR]
#
# Steps: venv -> build tools -> torch -> mmcv 2.1.0 with compiled ops (built from source
# against that torch, or a cached wheel built earlier for the same torch and Python) ->
# mmengine / mmsegmentation -> mmdeploy (without its stale protobuf pin) -> this package
# (editable) -> import check. Every step is timed; the first failing step stops the run
# with its name and a non-zero exit, and the environment is only marked usable
# ($VENV/.mmseg-tao-ready) once every step has passed.
#
# Environment:
#   MMSEG_TAO_VENV        venv directory (default: .venv in the repository; --venv wins)
#   PYTHON                interpreter that creates the venv (default: python3)
#   TORCH_SPEC            torch + torchvision to install when the venv has none (timm needs
#                         torchvision; default: "torch==2.14.1 torchvision==0.29.1")
#   TORCH_INDEX_URL       index to take torch from, e.g. https://download.pytorch.org/whl/cu126
#   USE_SYSTEM_TORCH=1    reuse the torch of $PYTHON (venv with --system-site-packages)
#   MMCV_WITH_CUDA=0|1    build mmcv's CUDA ops (default: 1 when torch sees a GPU and nvcc
#                         exists; without a GPU also set TORCH_CUDA_ARCH_LIST, e.g. "8.0;9.0")
#   MMSEG_TAO_CACHE_DIR   where built mmcv wheels are cached (default: ~/.cache/mmseg-tao)
#   MAX_JOBS              parallel compile jobs for mmcv (default: number of cores)
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMSEG_TAO_VENV:-$REPO/.venv}
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV=$2; shift 2 ;;
    --venv=*) VENV=${1#--venv=}; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "setup_env.sh: unknown argument '$1' (expected --venv DIR)" >&2; exit 2 ;;
  esac
done
case "$VENV" in /*) ;; *) VENV=$PWD/$VENV ;; esac

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
MMCV_VERSION=2.1.0
CACHE_DIR=${MMSEG_TAO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mmseg-tao}
READY=$VENV/.mmseg-tao-ready
# Pins the torch chosen in step "torch", so that no later install swaps it (mmcv's compiled
# ops are built against that exact version).
PINS=$VENV/.mmseg-tao-torch-pins.txt
MMCV_STAMP=$VENV/.mmseg-tao-mmcv-built-for
PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check)
# ninja (installed in the venv) must be on PATH for torch to compile mmcv in parallel.
export PATH="$VENV/bin:$PATH"

STEP="start"
exec 3>&2  # the terminal's stderr, for messages written while a step's output is logged
T_ALL=$(date +%s)
SUMMARY=()
on_error() {
  local rc=$?
  trap - ERR
  {
    echo
    echo "setup_env.sh: FAILED at step '$STEP' (exit $rc)."
    if [ -n "${STEP_LOG:-}" ] && [ -s "$STEP_LOG" ]; then
      echo "--- last lines of $STEP_LOG (full log kept there) ---"
      grep -v 'is ignored: it is neither' "$STEP_LOG" | tail -n 40
    fi
    echo "The environment at $VENV is NOT ready; fix the cause and re-run this command."
  } >&3
  exit "$rc"
}
trap on_error ERR

# Run one step: its output goes to a log that is shown only when it fails.
run_step() {
  STEP=$1; shift
  local t0 t1
  t0=$(date +%s)
  STEP_LOG=$(mktemp "${TMPDIR:-/tmp}/mmseg-tao-setup.XXXXXX")
  printf '==> %-28s ' "$STEP"
  "$@" >"$STEP_LOG" 2>&1
  t1=$(date +%s)
  local note=""
  [ -s "$STEP_LOG.note" ] && note=$(cat "$STEP_LOG.note")
  printf '%4ss  %s\n' "$((t1 - t0))" "$note"
  SUMMARY+=("$(printf '%-28s %5ss  %s' "$STEP" "$((t1 - t0))" "$note")")
  rm -f "$STEP_LOG" "$STEP_LOG.note"
  STEP_LOG=""
}
note() { echo "$*" >"$STEP_LOG.note"; }

step_venv() {
  rm -f "$READY"
  if [ -x "$PY" ] && "$PY" -c 'import sys' 2>/dev/null; then
    note "reusing $VENV ($("$PY" -V 2>&1))"
    return
  fi
  local args=()
  if [ "${USE_SYSTEM_TORCH:-0}" = 1 ]; then
    "$PYTHON" -c 'import torch' || { echo "USE_SYSTEM_TORCH=1 but $PYTHON cannot import torch"; return 1; }
    args+=(--system-site-packages)
  fi
  "$PYTHON" -m venv "${args[@]}" "$VENV"
  note "created $VENV ($("$PY" -V 2>&1)${args:+, system site-packages})"
}

step_build_tools() {
  "${PIP[@]}" install -U pip
  "${PIP[@]}" install -r "$REPO/requirements/build.txt" numpy
  note "$("$PY" -c 'import setuptools; print("setuptools", setuptools.__version__)')"
}

torch_versions() {
  "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
}

step_torch() {
  local what="keeping"
  if ! torch_versions >/dev/null 2>&1; then
    local idx=()
    [ -n "${TORCH_INDEX_URL:-}" ] && idx=(--index-url "$TORCH_INDEX_URL")
    # shellcheck disable=SC2086  # TORCH_SPEC is a list of requirements
    "${PIP[@]}" install "${idx[@]}" $TORCH_SPEC
    what="installed"
  fi
  torch_versions
  # Without the local label (+cu130): pip matches "==2.14.1" to the installed build, and
  # a machine-wide "torch<=2.14.1" constraint still applies.
  "$PY" -c 'import torch, torchvision
for m in (torch, torchvision):
    print(f"{m.__name__}=={m.__version__.split(chr(43))[0]}")' >"$PINS"
  note "$what $(torch_versions)"
}

mmcv_ok() {
  # Right version, compiled ops load, and built against the torch installed now.
  [ "$(cat "$MMCV_STAMP" 2>/dev/null)" = "$("$PY" -c 'import torch; print(torch.__version__)')" ] &&
  "$PY" - <<EOF 2>/dev/null
import mmcv, mmcv._ext, mmcv.ops
assert mmcv.__version__ == '$MMCV_VERSION', mmcv.__version__
EOF
}

install_mmcv_wheel() {
  "${PIP[@]}" install --force-reinstall --no-deps "$1"
  "${PIP[@]}" install -c "$PINS" "$1"
  "$PY" -c 'import torch; print(torch.__version__)' >"$MMCV_STAMP"
}

step_mmcv() {
  if mmcv_ok; then
    note "mmcv $MMCV_VERSION with ops already installed"
    return
  fi
  local tag with_cuda std
  tag=$("$PY" -c 'import sys, torch; print(f"torch{torch.__version__}-cp{sys.version_info[0]}{sys.version_info[1]}")')
  # CUDA ops only where they can be used and built: a GPU and nvcc (a CUDA build of torch
  # on a machine without a GPU gets the CPU ops, as CI does).
  with_cuda=${MMCV_WITH_CUDA:-$("$PY" -c 'import shutil, torch; print(int(torch.cuda.is_available() and shutil.which("nvcc") is not None))')}
  local wheel_dir=$CACHE_DIR/mmcv-$MMCV_VERSION/$tag-cuda$with_cuda
  local cached
  cached=$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$cached" ]; then
    install_mmcv_wheel "$cached"
    mmcv_ok
    note "cached wheel $(basename "$cached") ($tag)"
    return
  fi
  # Build from source. torch >= 2.10 headers need C++20, mmcv's setup.py forces an older
  # standard: a compiler wrapper appends -std=c++20 (the last -std wins in gcc and nvcc).
  std=$("$PY" -c 'import torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); print("c++20" if v >= (2, 10) else "c++17")')
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/mmcv-build.XXXXXX")
  mkdir -p "$work/bin"
  # Debug info (-g, from Python's build flags) is dropped: it slows the build by a third.
  cat >"$work/bin/cxx" <<EOF
#!/bin/sh
for a do
  shift
  case "\$a" in -g) ;; *) set -- "\$@" "\$a" ;; esac
done
exec ${CXX:-c++} "\$@" -std=$std
EOF
  cat >"$work/bin/nvcc" <<EOF
#!/bin/sh
exec "\${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" "\$@" -std=$std
EOF
  chmod +x "$work/bin/cxx" "$work/bin/nvcc"
  "${PIP[@]}" download --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$work"
  tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
  local env_cuda=(FORCE_CUDA=0)
  [ "$with_cuda" = 1 ] && env_cuda=(FORCE_CUDA=1 PYTORCH_NVCC="$work/bin/nvcc")
  (cd "$work/mmcv-$MMCV_VERSION" &&
    env CXX="$work/bin/cxx" MMCV_WITH_OPS=1 "${env_cuda[@]}" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$work/dist" .)
  mkdir -p "$wheel_dir"
  # Copy then rename, so a cache reader never sees a half-written wheel.
  local built
  built=$(ls "$work"/dist/mmcv-*.whl)
  cp "$built" "$wheel_dir/.partial"
  mv "$wheel_dir/.partial" "$wheel_dir/$(basename "$built")"
  install_mmcv_wheel "$built"
  rm -rf "$work"
  mmcv_ok
  note "built from source ($std, cuda=$with_cuda), cached in $wheel_dir"
}

step_openmmlab() {
  "${PIP[@]}" install -c "$PINS" "mmengine==0.10.7" "mmsegmentation==1.2.2" \
    -r "$REPO/requirements/runtime.txt"
  note "$("$PY" -c 'import mmengine, mmseg; print("mmengine", mmengine.__version__, "mmseg", mmseg.__version__)')"
}

step_mmdeploy() {
  # mmdeploy pins protobuf<=3.20.2, which current onnx cannot use: install it without its
  # dependencies, then its real requirements from requirements/deploy.txt.
  "${PIP[@]}" install --no-deps "$(grep -E '^mmdeploy' "$REPO/requirements/deploy.txt")"
  # shellcheck disable=SC2046
  "${PIP[@]}" install -c "$PINS" $(grep -vE '^(#|mmdeploy|$)' "$REPO/requirements/deploy.txt")
  note "$("$PY" -c 'import mmdeploy, onnx, onnxruntime as ort; print("mmdeploy", mmdeploy.__version__, "onnx", onnx.__version__, "onnxruntime", ort.__version__)')"
}

step_package() {
  "${PIP[@]}" install -c "$PINS" -e "$REPO" -r "$REPO/requirements/tests.txt"
  note "mmseg-tao $("$PY" -c 'import mmseg_tao; print(mmseg_tao.__version__)') (editable)"
}

step_verify() {
  "$PY" -c "import mmseg_tao, mmseg.models, mmcv.ops, mmdeploy.apis"
  note "$("$PY" -c "import torch, mmcv, mmseg_tao; print('torch', torch.__version__, '| mmcv', mmcv.__version__, '| import mmseg_tao, mmseg.models, mmcv.ops, mmdeploy.apis: ok')")"
}

echo "mmseg-tao setup: venv $VENV, cache $CACHE_DIR"
run_step "virtual environment" step_venv
run_step "build tools" step_build_tools
run_step "torch" step_torch
run_step "mmcv $MMCV_VERSION (compiled ops)" step_mmcv
run_step "mmengine + mmsegmentation" step_openmmlab
run_step "mmdeploy + onnxruntime" step_mmdeploy
run_step "mmseg-tao (editable)" step_package
run_step "import check" step_verify
touch "$READY"
trap - ERR

echo
echo "Done in $(( $(date +%s) - T_ALL ))s. Summary:"
printf '  %s\n' "${SUMMARY[@]}"
echo "Activate with: source $VENV/bin/activate   Run the tests with: bash tools/run_tests.sh"
