#!/usr/bin/env bash
# Fill a wheelhouse for an offline install (tools/setup_env.sh --wheelhouse DIR), on a machine
# with network, for the Python and platform of the target machine.
#
#   bash tools/fill_wheelhouse.sh DIR [--python-version X.Y] [--platform TAG ...] [--with-torch]
#
#   --python-version X.Y  Python of the target (default: that of $PYTHON)
#   --platform TAG        platform tag of the target, repeatable (default manylinux_2_28_<arch of
#                         this machine>); manylinux_2_N_ARCH also accepts every older glibc
#                         level (manylinux_2_N-1 .. manylinux1) and linux_ARCH, as pip does
#   --with-torch          also download torch + torchvision (TORCH_SPEC, TORCH_INDEX_URL as in
#                         setup_env.sh) with their dependencies (several GB with CUDA)
#   --dry-run             print the requirements and platform tags, download nothing
#
# DIR gets, as binary wheels for that Python and platform (pip download --only-binary=:all:,
# dependencies resolved): pip, requirements/build.txt, numpy, requirements/runtime.txt,
# requirements/deploy.txt, requirements/tests.txt, mmengine, mmsegmentation, the quantize
# task's nvidia-modelopt, torchao and requests (requirements/quantize.txt) and the runtime
# requirements of mmcv (read from its sdist), mmdeploy alone (--no-deps, as setup_env.sh
# installs it), at the versions of requirements/pins.txt (listed at the end of --help); the
# mmcv-<version>.tar.gz sdist (setup_env.sh builds it when no prebuilt wheel fits); and every
# mmcv wheel in the local cache (MMSEG_TAO_CACHE_DIR, default ~/.cache/mmseg-tao) built for
# that Python and architecture, under
# DIR/mmcv-<version>/torch<version>-cp<XY>-cuda<0|1>/ (the name says which torch it needs;
# setup_env.sh installs it only on a matching torch, and builds from the sdist otherwise or
# when the wheel, compiled on this machine, does not load there).
#
# torch without --with-torch: the target keeps its own torch (USE_SYSTEM_TORCH=1), so neither
# torch nor its dependencies (nvidia-*, triton, sympy, ...) are downloaded. Packages that
# require torch (timm needs torch and torchvision) are resolved against placeholder
# torch/torchvision wheels of the versions in TORCH_SPEC (default: the torch and torchvision
# pins), which are removed afterwards: their other dependencies are downloaded,
# torch and torchvision must be on the target (torchvision too: timm imports it). Set
# TORCH_SPEC to the target's versions when a dependency could care (e.g. "torch==2.4.1
# torchvision==0.19.1").
#
# Environment: PYTHON (runs pip, default python3; tried with pip 23.2 and 26.3), TORCH_SPEC,
# TORCH_INDEX_URL, MMSEG_TAO_CACHE_DIR. pip's own configuration (indexes, proxy) applies.
set -Eeuo pipefail

SCRIPT=fill_wheelhouse.sh
USAGE="fill_wheelhouse.sh DIR [--python-version X.Y] [--platform TAG] [--with-torch]"
STEP_WIDTH=44
# shellcheck source=tools/lib/env_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env_common.sh"

DIR="" PYV="" WITH_TORCH=0 DRY_RUN=0 PLATFORMS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) [ $# -ge 2 ] || die "--python-version needs a value"; PYV=$2; shift 2 ;;
    --python-version=*) PYV=${1#*=}; shift ;;
    --platform) [ $# -ge 2 ] || die "--platform needs a value"; PLATFORMS+=("$2"); shift 2 ;;
    --platform=*) PLATFORMS+=("${1#*=}"); shift ;;
    --with-torch) WITH_TORCH=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown argument '$1'" ;;
    *) [ -z "$DIR" ] || die "unexpected argument '$1': DIR is already '$DIR'"; DIR=$1; shift ;;
  esac
done
[ -n "$DIR" ] || die "missing DIR"

PIP=("$PYTHON" -m pip --disable-pip-version-check)
TORCH_SPEC=${TORCH_SPEC:-$DEFAULT_TORCH_SPEC}

[ -n "$PYV" ] || PYV=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ "$PYV" =~ ^3\.[0-9]+$ ]] || die "--python-version must look like 3.12, not '$PYV'"
CP=cp${PYV/./}
[ ${#PLATFORMS[@]} -gt 0 ] || PLATFORMS=("manylinux_2_28_$(uname -m)")

# manylinux_2_N_ARCH -> itself, every older manylinux_2_M (with the legacy aliases) and
# linux_ARCH: the tags pip accepts on a machine with glibc 2.N.
TAGS=() ARCHES=()
add_arch() { [[ " ${ARCHES[*]} " == *" $1 "* ]] || ARCHES+=("$1"); }
for p in "${PLATFORMS[@]}"; do
  if [[ "$p" =~ ^manylinux_2_([0-9]+)_(.+)$ ]]; then
    n=${BASH_REMATCH[1]} arch=${BASH_REMATCH[2]}
    for ((m = n; m >= 5; m--)); do
      TAGS+=("manylinux_2_${m}_$arch")
      case $m in 17) TAGS+=("manylinux2014_$arch") ;; 12) TAGS+=("manylinux2010_$arch") ;;
                  5) TAGS+=("manylinux1_$arch") ;; esac
    done
    TAGS+=("linux_$arch")
    add_arch "$arch"
  else
    TAGS+=("$p")
    # (mmcv wheels from the cache are glibc builds: none for musllinux)
    if [[ "$p" =~ ^(manylinux[0-9]+|linux)_(.+)$ ]]; then add_arch "${BASH_REMATCH[2]}"; fi
  fi
done
PLATFORM_ARGS=()
for p in "${TAGS[@]}"; do PLATFORM_ARGS+=(--platform "$p"); done
TARGET=(--only-binary=:all: --implementation cp --python-version "$PYV" "${PLATFORM_ARGS[@]}")

# Placeholder versions for torch / torchvision (see the header), from TORCH_SPEC's pins.
pinned() {  # pinned NAME -> the version TORCH_SPEC pins NAME to, without a local label
  local r
  for r in $TORCH_SPEC; do
    [[ "$r" =~ ^$1==([^+]+) ]] && { echo "${BASH_REMATCH[1]}"; return; }
  done
  echo ""
}
TORCH_V=$(pinned torch) TORCHVISION_V=$(pinned torchvision)
[ -n "$TORCH_V" ] && [ -n "$TORCHVISION_V" ] ||
  die "TORCH_SPEC must pin torch==X and torchvision==Y (it is '$TORCH_SPEC')"

# Requirements resolved together (mmdeploy comes separately, without its dependencies).
REQ_FILES=(build.txt runtime.txt deploy.txt tests.txt)
# shellcheck disable=SC2206
EXTRA_REQS=(pip numpy "mmengine==$MMENGINE_VERSION" "mmsegmentation==$MMSEG_VERSION" $QUANTIZE_PINS)
MMDEPLOY="mmdeploy==$MMDEPLOY_VERSION"

if [ "$DRY_RUN" = 1 ]; then
  echo "wheelhouse: $DIR"
  echo "target: python $PYV ($CP), platforms ${PLATFORMS[*]}"
  echo "platform tags: ${TAGS[*]}"
  echo "resolved together: ${REQ_FILES[*]/#/requirements/} (without mmdeploy) ${EXTRA_REQS[*]} + mmcv $MMCV_VERSION's runtime requirements"
  echo "without dependencies: $MMDEPLOY"
  echo "sdist: mmcv==$MMCV_VERSION"
  if [ "$WITH_TORCH" = 1 ]; then
    echo "torch: $TORCH_SPEC${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL}, with dependencies"
  else
    echo "torch: not downloaded (placeholders torch==$TORCH_V torchvision==$TORCHVISION_V for resolving)"
  fi
  echo "mmcv wheels from: $MMCV_CACHE/*-$CP-cuda*/ (${ARCHES[*]:-none: no glibc platform})"
  exit 0
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fill-wheelhouse.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
BEFORE=$WORK/before.txt
(cd "$DIR" && find . -type f -printf '%P %s %T@\n' | LC_ALL=C sort) >"$BEFORE"
T_ALL=$SECONDS
echo "fill_wheelhouse: $DIR for python $PYV ($CP), ${PLATFORMS[*]}, pip $("${PIP[@]}" --version | cut -d' ' -f2)"

steps_begin

new_files() {  # files of DIR added or changed since the listing in $1
  (cd "$DIR" && find . -type f -printf '%P %s %T@\n' | LC_ALL=C sort) >"$WORK/now.txt"
  LC_ALL=C comm -13 "$1" "$WORK/now.txt"
}

# 1. The mmcv sdist. pip prepares its metadata, which runs mmcv's setup.py: that imports
# pkg_resources, gone in setuptools >= 81, so the isolated build gets setuptools < 81 (pip >= 25.3
# takes --build-constraint; older pips take PIP_CONSTRAINT into the build environment).
echo 'setuptools<81' >"$WORK/build-constraints.txt"
fetch_sdist() {
  if "${PIP[@]}" download --help | grep -q -- '--build-constraint'; then
    "${PIP[@]}" download --no-deps --no-binary :all: --build-constraint "$WORK/build-constraints.txt" \
      -d "$DIR" "mmcv==$MMCV_VERSION"
  else
    PIP_CONSTRAINT=$WORK/build-constraints.txt \
      "${PIP[@]}" download --no-deps --no-binary :all: -d "$DIR" "mmcv==$MMCV_VERSION"
  fi
  tar -xzOf "$DIR/mmcv-$MMCV_VERSION.tar.gz" "mmcv-$MMCV_VERSION/requirements/runtime.txt" \
    >"$WORK/mmcv-runtime.txt"
  # mmcv's setup.py adds opencv-python when no cv2 is importable at build time.
  echo 'opencv-python>=3' >>"$WORK/mmcv-runtime.txt"
}
run_step "mmcv $MMCV_VERSION sdist" fetch_sdist

# 2. Placeholder torch / torchvision wheels: empty, no dependencies, a local version label that
# only the constraints below select.
make_placeholder() {  # make_placeholder NAME VERSION
  "$PYTHON" - "$WORK/placeholders" "$1" "$2+mmsegtao.placeholder" <<'EOF'
import os, sys, zipfile
out, name, version = sys.argv[1:]
os.makedirs(out, exist_ok=True)
info = f'{name}-{version}.dist-info'
files = {
    f'{info}/METADATA': f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n'
                        'Summary: placeholder of tools/fill_wheelhouse.sh, never installed\n',
    f'{info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: fill_wheelhouse.sh\n'
                     'Root-Is-Purelib: true\nTag: py3-none-any\n',
}
files[f'{info}/RECORD'] = ''.join(f'{p},,\n' for p in files) + f'{info}/RECORD,,\n'
with zipfile.ZipFile(os.path.join(out, f'{name}-{version}-py3-none-any.whl'), 'w') as z:
    for path, text in files.items():
        z.writestr(path, text)
EOF
}
make_placeholder torch "$TORCH_V"
make_placeholder torchvision "$TORCHVISION_V"
printf '%s\n' "torch==$TORCH_V+mmsegtao.placeholder" "torchvision==$TORCHVISION_V+mmsegtao.placeholder" \
  >"$WORK/no-torch-constraints.txt"
grep -vE '^(#|mmdeploy|$)' "$REPO/requirements/deploy.txt" >"$WORK/deploy-deps.txt"

# 3. Everything the set-up installs with dependencies, resolved together for the target.
fetch_wheels() {
  local reqs=() f
  for f in build.txt runtime.txt tests.txt; do reqs+=(-r "$REPO/requirements/$f"); done
  "${PIP[@]}" download "${TARGET[@]}" -d "$DIR" \
    --find-links "$WORK/placeholders" -c "$WORK/no-torch-constraints.txt" \
    "${reqs[@]}" -r "$WORK/deploy-deps.txt" -r "$WORK/mmcv-runtime.txt" "${EXTRA_REQS[@]}"
  rm -f "$DIR"/torch-*+mmsegtao.placeholder-*.whl "$DIR"/torchvision-*+mmsegtao.placeholder-*.whl
}
run_step "wheels ($CP, with dependencies)" fetch_wheels
run_step "$MMDEPLOY (without dependencies)" "${PIP[@]}" download "${TARGET[@]}" --no-deps -d "$DIR" "$MMDEPLOY"

# 4. torch, only when asked for.
if [ "$WITH_TORCH" = 1 ]; then
  idx=()
  [ -n "${TORCH_INDEX_URL:-}" ] && idx=(--index-url "$TORCH_INDEX_URL")
  # shellcheck disable=SC2086  # TORCH_SPEC is a list of requirements
  run_step "torch: $TORCH_SPEC" "${PIP[@]}" download "${TARGET[@]}" "${idx[@]}" -d "$DIR" $TORCH_SPEC
fi
# Without --with-torch nothing may pull the real torch in through another route.
if [ "$WITH_TORCH" = 0 ] && new_files "$BEFORE" | grep -qE '^(torch|torchvision|triton|nvidia_)[-_]'; then
  echo "fill_wheelhouse.sh: torch wheels were downloaded without --with-torch:" >&2
  new_files "$BEFORE" | grep -E '^(torch|torchvision|triton|nvidia_)[-_]' >&2
  exit 1
fi

# 5. mmcv wheels built earlier (setup_env.sh caches them) for this Python and architecture.
copied=0
for w in "$MMCV_CACHE"/torch*-"$CP"-cuda[01]/mmcv-"$MMCV_VERSION"-"$CP"-*.whl; do
  [ -f "$w" ] || continue
  arch_ok=0
  for a in "${ARCHES[@]}"; do [[ "$w" == *_"$a".whl ]] && arch_ok=1; done
  [ "$arch_ok" = 1 ] || continue
  sub=$MMCV_SUBDIR/$(basename "$(dirname "$w")")
  mkdir -p "$DIR/$sub"
  cp -p "$w" "$DIR/$sub/.partial" && mv "$DIR/$sub/.partial" "$DIR/$sub/$(basename "$w")"
  copied=$((copied + 1))
done
echo "==> mmcv wheels from $MMCV_CACHE: $copied copied"

echo
echo "Written to $DIR (new or changed files):"
new_files "$BEFORE" | awk '{ printf "  %8.1f MB  %s\n", $2 / 1048576, $1 }'
echo "Wheelhouse: $(find "$DIR" -type f | wc -l) files, $(du -sh "$DIR" | cut -f1) in all" \
  "($((SECONDS - T_ALL))s). On the target machine:"
if [ "$WITH_TORCH" = 1 ]; then
  echo "  bash tools/setup_env.sh --wheelhouse $DIR"
else
  echo "  USE_SYSTEM_TORCH=1 PYTHON=/path/to/python-with-torch bash tools/setup_env.sh --wheelhouse $DIR"
fi
