#!/usr/bin/env bash
# Set up everything mmseg-tao needs in a virtual environment, on a fresh machine or again.
#
#   bash tools/setup_env.sh [--venv DIR] [--wheelhouse DIR] [--dry-run]
#
#   --venv DIR            the venv to set up (default .venv in the repository)
#   --wheelhouse DIR      install without network, from DIR only (filled by
#                         tools/fill_wheelhouse.sh): every pip call gets --no-index
#                         --find-links DIR; mmcv is a prebuilt wheel from
#                         DIR/mmcv-<version>/torch<version>-cp<XY>-cuda<0|1>/ when one matches
#                         the torch and Python here, else it is built from DIR/mmcv-<version>.tar.gz
#   --dry-run             print the pip sources and the mmcv build environment, change nothing
#
# Steps: venv -> build tools -> torch -> mmcv with compiled ops (built from source
# against that torch, or a cached wheel built earlier for the same torch and Python) ->
# mmengine / mmsegmentation -> mmdeploy (without its stale protobuf pin) -> this package
# (editable) -> import check. Every step is timed; the first failing step stops the run
# with its name and a non-zero exit, and the environment is only marked usable
# ($VENV/.mmseg-tao-ready) once every step has passed. The versions of torch (for a venv
# without one), mmcv, mmengine, mmsegmentation and mmdeploy are those of requirements/pins.txt
# (listed at the end of --help).
#
# Environment:
#   MMSEG_TAO_VENV        venv directory (default: .venv in the repository; --venv wins)
#   PYTHON                interpreter that creates the venv (default: python3)
#   TORCH_SPEC            torch + torchvision to install when the venv has none (timm needs
#                         torchvision; default: the pins, "torch==X torchvision==Y")
#   TORCH_INDEX_URL       index to take torch from, e.g. https://download.pytorch.org/whl/cu126
#   USE_SYSTEM_TORCH=1    reuse the torch of $PYTHON: the venv sees the packages $PYTHON sees
#                         (--system-site-packages; when $PYTHON is itself a venv, whose packages
#                         that would not show, a .pth file naming $PYTHON's site-packages)
#   MMCV_WITH_CUDA=0|1    build mmcv's CUDA ops (default: 1 when torch sees a GPU and nvcc
#                         exists; without a GPU also set TORCH_CUDA_ARCH_LIST, e.g. "8.0;9.0");
#                         0 hides the GPU from the build (mmcv builds CUDA ops whenever it sees one)
#   MMSEG_TAO_WHEELHOUSE  as --wheelhouse (the option wins)
#   MMSEG_TAO_CACHE_DIR   where built mmcv wheels are cached (default: ~/.cache/mmseg-tao)
#   MAX_JOBS              parallel compile jobs for mmcv (default: number of cores)
set -Eeuo pipefail

SCRIPT=setup_env.sh
USAGE="setup_env.sh [--venv DIR] [--wheelhouse DIR] [--dry-run]"
# shellcheck source=tools/lib/env_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env_common.sh"
VENV=${MMSEG_TAO_VENV:-$DEFAULT_VENV}
WHEELHOUSE=${MMSEG_TAO_WHEELHOUSE:-}
DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv|--wheelhouse) [ $# -ge 2 ] || die "$1 needs a directory" ;;&
    --venv) VENV=$2; shift 2 ;;
    --venv=*) VENV=${1#--venv=}; shift ;;
    --wheelhouse) WHEELHOUSE=$2; shift 2 ;;
    --wheelhouse=*) WHEELHOUSE=${1#--wheelhouse=}; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
case "$VENV" in /*) ;; *) VENV=$PWD/$VENV ;; esac
# Where pip takes packages from: the index (pip's configuration), or only the wheelhouse.
PIP_SOURCE=()
if [ -n "$WHEELHOUSE" ]; then
  [ -d "$WHEELHOUSE" ] || die "wheelhouse '$WHEELHOUSE' is not a directory"
  WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
  PIP_SOURCE=(--no-index --find-links "$WHEELHOUSE")
fi

TORCH_SPEC=${TORCH_SPEC:-$DEFAULT_TORCH_SPEC}
READY=$VENV/$READY_NAME
# Pins the torch chosen in step "torch", so that no later install swaps it (mmcv's compiled
# ops are built against that exact version).
TORCH_PINS=$VENV/.mmseg-tao-torch-pins.txt
MMCV_STAMP=$VENV/.mmseg-tao-mmcv-built-for
PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check)
pip_install() { "${PIP[@]}" install "${PIP_SOURCE[@]}" "$@"; }
# ninja (installed in the venv) must be on PATH for torch to compile mmcv in parallel.
export PATH="$VENV/bin:$PATH"

# The environment of mmcv's build. mmcv 2.1.0's setup.py compiles the CUDA ops whenever
# torch.cuda.is_available(), whatever FORCE_CUDA says: a CPU-only build hides the GPU.
mmcv_build_env() {  # mmcv_build_env WITH_CUDA WORK_DIR -> MMCV_BUILD_ENV (VAR=value words)
  MMCV_BUILD_ENV=(CXX="$2/bin/cxx" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}")
  if [ "$1" = 1 ]; then
    MMCV_BUILD_ENV+=(FORCE_CUDA=1 PYTORCH_NVCC="$2/bin/nvcc")
  else
    MMCV_BUILD_ENV+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
  fi
}

if [ "$DRY_RUN" = 1 ]; then
  echo "venv: $VENV"
  echo "python: $PYTHON${USE_SYSTEM_TORCH:+ (USE_SYSTEM_TORCH=$USE_SYSTEM_TORCH)}"
  echo "pip install sources: ${PIP_SOURCE[*]:-the index of the pip configuration}"
  if [ -n "$WHEELHOUSE" ]; then
    wh_torch=$(cd "$WHEELHOUSE" && find . -maxdepth 1 -name 'torch-*.whl' -printf '%f ')
    wh_mmcv=$(cd "$WHEELHOUSE" && find . -path "./$MMCV_SUBDIR/*/mmcv-*.whl" -printf '%h ' | sed "s|\./$MMCV_SUBDIR/||g")
    echo "wheelhouse: $(find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' | wc -l) wheels; torch: ${wh_torch:-none}"
    echo "mmcv: prebuilt wheels for ${wh_mmcv:-none}; sdist: $(cd "$WHEELHOUSE" && ls "mmcv-$MMCV_VERSION.tar.gz" 2>/dev/null || echo none)"
  fi
  for c in ${MMCV_WITH_CUDA:-0 1}; do
    mmcv_build_env "$c" '$WORK'
    echo "mmcv build env (cuda=$c${MMCV_WITH_CUDA:+ from MMCV_WITH_CUDA}): ${MMCV_BUILD_ENV[*]}"
  done
  exit 0
fi

T_ALL=$(date +%s)
FAIL_HINT="The environment at $VENV is NOT ready; fix the cause and re-run this command."
steps_begin

step_venv() {
  rm -f "$READY"
  if [ -x "$PY" ] && "$PY" -c 'import sys' 2>/dev/null; then
    note "reusing $VENV ($("$PY" -V 2>&1))"
    return
  fi
  local args=() how=""
  if [ "${USE_SYSTEM_TORCH:-0}" = 1 ]; then
    "$PYTHON" -c 'import torch' || { echo "USE_SYSTEM_TORCH=1 but $PYTHON cannot import torch"; return 1; }
    # A venv (or virtualenv) $PYTHON: --system-site-packages would show its base interpreter's
    # packages, not its own; link_system_torch adds those.
    if [ "$("$PYTHON" -c 'import sys; print(int(sys.prefix == sys.base_prefix))')" = 1 ]; then
      args+=(--system-site-packages)
      how=", system site-packages"
    fi
  fi
  "$PYTHON" -m venv "${args[@]}" "$VENV"
  if [ "${USE_SYSTEM_TORCH:-0}" = 1 ]; then
    link_system_torch
    how="$how$LINKED"
  fi
  note "created $VENV ($("$PY" -V 2>&1)$how)"
}

# When the new venv does not import $PYTHON's torch ($PYTHON is a venv, or its torch is
# elsewhere on its path), it gets a .pth file naming the directories that hold $PYTHON's torch
# and torchvision, then $PYTHON's other site-packages (its base interpreter's too when it sees
# them); they come after the venv's own site-packages, so what the set-up installs wins.
link_system_torch() {
  local where="import importlib.util as u; print(u.find_spec('torch').origin)"
  local want site pth
  LINKED=""
  want=$("$PYTHON" -c "$where")
  [ "$("$PY" -c "$where" 2>/dev/null)" = "$want" ] && return
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  pth=$site/mmseg_tao_system_torch.pth
  "$PYTHON" - >"$pth" <<'PYEOF'
import importlib.util
import os.path as osp
import site

dirs = []
for name in ('torch', 'torchvision'):
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.origin:
        dirs.append(osp.dirname(osp.dirname(spec.origin)))
dirs += site.getsitepackages()
if site.ENABLE_USER_SITE:
    dirs.append(site.getusersitepackages())
print('\n'.join(d for d in dict.fromkeys(dirs) if osp.isdir(d)))
PYEOF
  if [ "$("$PY" -c "$where" 2>/dev/null)" != "$want" ]; then
    echo "USE_SYSTEM_TORCH=1: $VENV does not import the torch of $PYTHON ($want), even with $pth:"
    cat "$pth"
    return 1
  fi
  LINKED=", $PYTHON's torch through $(basename "$pth")"
}

step_build_tools() {
  pip_install -U pip
  pip_install -r "$REPO/requirements/build.txt" numpy
  note "$("$PY" -c 'import setuptools; print("setuptools", setuptools.__version__)')"
}

torch_versions() {
  "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
}

step_torch() {
  local what="keeping"
  if ! torch_versions >/dev/null 2>&1; then
    local idx=()
    if [ -n "$WHEELHOUSE" ]; then
      ls "$WHEELHOUSE"/torch-*.whl >/dev/null 2>&1 || {
        echo "No torch in $VENV and no torch wheel in the wheelhouse $WHEELHOUSE: fill it with"
        echo "tools/fill_wheelhouse.sh --with-torch, or keep the machine's torch (USE_SYSTEM_TORCH=1)."
        return 1
      }
    elif [ -n "${TORCH_INDEX_URL:-}" ]; then
      idx=(--index-url "$TORCH_INDEX_URL")
    fi
    # shellcheck disable=SC2086  # TORCH_SPEC is a list of requirements
    pip_install "${idx[@]}" $TORCH_SPEC
    what="installed"
  fi
  torch_versions
  # Without the local label (+cu130): pip matches "==X.Y.Z" to the installed build, and
  # a machine-wide "torch<=X.Y.Z" constraint still applies.
  "$PY" -c 'import torch, torchvision
for m in (torch, torchvision):
    print(f"{m.__name__}=={m.__version__.split(chr(43))[0]}")' >"$TORCH_PINS"
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
  pip_install --force-reinstall --no-deps "$1" &&
    pip_install -c "$TORCH_PINS" "$1" &&
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
  local key=$MMCV_SUBDIR/$tag-cuda$with_cuda
  local wheel_dir=$CACHE_DIR/$key
  local cached where skipped=""
  # A wheel built earlier for this torch and Python: the local cache, then the wheelhouse (built
  # on another machine: if its ops do not load here, e.g. an older libstdc++, build instead).
  for where in "$CACHE_DIR" ${WHEELHOUSE:+"$WHEELHOUSE"}; do
    cached=$(ls "$where/$key/mmcv-$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
    [ -n "$cached" ] || continue
    if install_mmcv_wheel "$cached" && mmcv_ok; then
      note "prebuilt wheel $(basename "$cached") ($tag) from $where"
      return
    fi
    echo "setup_env.sh: $cached does not work here; trying the next source"
    rm -f "$MMCV_STAMP"
    skipped="; $cached did not load"
  done
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
  local sdist=$work/mmcv-$MMCV_VERSION.tar.gz
  if [ -n "$WHEELHOUSE" ]; then
    sdist=$WHEELHOUSE/mmcv-$MMCV_VERSION.tar.gz
    [ -f "$sdist" ] || { echo "No mmcv wheel for $tag-cuda$with_cuda and no $sdist to build one"; return 1; }
  else
    "${PIP[@]}" download --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$work"
  fi
  # --no-same-owner: as root in a user namespace (unshare -r, rootless containers) the
  # sdist's owner cannot be restored.
  tar --no-same-owner -xzf "$sdist" -C "$work"
  mmcv_build_env "$with_cuda" "$work"
  echo "mmcv build environment: ${MMCV_BUILD_ENV[*]}"
  (cd "$work/mmcv-$MMCV_VERSION" &&
    env "${MMCV_BUILD_ENV[@]}" \
      "${PIP[@]}" wheel "${PIP_SOURCE[@]}" --no-deps --no-build-isolation -w "$work/dist" .)
  mkdir -p "$wheel_dir"
  # Copy then rename, so a cache reader never sees a half-written wheel.
  local built
  built=$(ls "$work"/dist/mmcv-*.whl)
  cp "$built" "$wheel_dir/.partial"
  mv "$wheel_dir/.partial" "$wheel_dir/$(basename "$built")"
  install_mmcv_wheel "$built"
  rm -rf "$work"
  mmcv_ok
  note "built from source ($std, cuda=$with_cuda), cached in $wheel_dir$skipped"
}

step_openmmlab() {
  pip_install -c "$TORCH_PINS" "mmengine==$MMENGINE_VERSION" "mmsegmentation==$MMSEG_VERSION" \
    -r "$REPO/requirements/runtime.txt"
  note "$("$PY" -c 'import mmengine, mmseg; print("mmengine", mmengine.__version__, "mmseg", mmseg.__version__)')"
}

step_mmdeploy() {
  # mmdeploy pins protobuf<=3.20.2, which current onnx cannot use: install it without its
  # dependencies, then its real requirements from requirements/deploy.txt.
  pip_install --no-deps "mmdeploy==$MMDEPLOY_VERSION"
  # shellcheck disable=SC2046
  pip_install -c "$TORCH_PINS" $(grep -vE '^(#|mmdeploy|$)' "$REPO/requirements/deploy.txt")
  note "$("$PY" -c 'import mmdeploy, onnx, onnxruntime as ort; print("mmdeploy", mmdeploy.__version__, "onnx", onnx.__version__, "onnxruntime", ort.__version__)')"
}

step_quantize() {
  # The quantize task (requirements/quantize.txt, pinned in requirements/pins.txt): ModelOpt
  # without its 'onnx' extra (it pins onnxruntime-gpu / onnx versions this stack cannot use;
  # modelopt.onnx is served by ONNX Runtime), torchao, and requests (modelopt imports it).
  # shellcheck disable=SC2086
  pip_install -c "$TORCH_PINS" $QUANTIZE_PINS
  note "$("$PY" -c 'import importlib.metadata as m; print(*(f"{n} {m.version(n)}" for n in ("nvidia-modelopt", "torchao")))')"
}

step_package() {
  # Offline, setuptools comes from the venv (build tools step), not from an index.
  local iso=()
  [ -n "$WHEELHOUSE" ] && iso=(--no-build-isolation)
  pip_install "${iso[@]}" -c "$TORCH_PINS" -e "$REPO" -r "$REPO/requirements/tests.txt"
  note "mmseg-tao $("$PY" -c 'import mmseg_tao; print(mmseg_tao.__version__)') (editable)"
}

step_verify() {
  "$PY" -c "import mmseg_tao, mmseg.models, mmcv.ops, mmdeploy.apis, torchao.quantization, modelopt.torch.quantization"
  note "$("$PY" -c "import torch, mmcv, mmseg_tao; print('torch', torch.__version__, '| mmcv', mmcv.__version__, '| import mmseg_tao, mmseg.models, mmcv.ops, mmdeploy.apis: ok')")"
}

echo "mmseg-tao setup: venv $VENV, cache $CACHE_DIR${WHEELHOUSE:+, offline from $WHEELHOUSE}"
run_step "virtual environment" step_venv
run_step "build tools" step_build_tools
run_step "torch" step_torch
run_step "mmcv $MMCV_VERSION (compiled ops)" step_mmcv
run_step "mmengine + mmsegmentation" step_openmmlab
run_step "mmdeploy + onnxruntime" step_mmdeploy
run_step "nvidia-modelopt + torchao (quantize)" step_quantize
run_step "mmseg-tao (editable)" step_package
run_step "import check" step_verify
touch "$READY"
trap - ERR

echo
echo "Done in $(( $(date +%s) - T_ALL ))s. Summary:"
printf '  %s\n' "${SUMMARY[@]}"
echo "Activate with: source $VENV/bin/activate   Run the tests with: bash tools/run_tests.sh"
