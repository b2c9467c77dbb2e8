#!/usr/bin/env bash
# CI check of the offline install (README, "GPU machines and offline install"), on CPU:
#
#   bash tools/test_offline_install.sh            (after tools/setup_env.sh; MMSEG_TAO_VENV as there)
#
# 1. "Machine torch": a venv that sees only the torch + torchvision of the main venv and their
#    dependencies (symlinks), standing for a GPU machine's torch. Pointing PYTHON at the main
#    venv itself would show its mmcv, mmengine, mmseg ... and prove nothing about the wheelhouse.
# 2. tools/fill_wheelhouse.sh DIR (no torch; the mmcv wheel that setup_env.sh cached is copied in,
#    so nothing is compiled here).
# 3. PIP_NO_INDEX=1 USE_SYSTEM_TORCH=1 PYTHON=<machine torch> tools/setup_env.sh --wheelhouse DIR
#    --venv TMP, with pip's configuration and PIP_FIND_LINKS cleared, an empty mmcv cache (the
#    wheel must come from DIR) and, where `unshare -rn` works, no network at all.
# 4. In that venv: import mmseg_tao, mmseg.models, mmcv.ops, mmdeploy.apis, with torch from the
#    main venv and everything else from the new one.
# Temporary files are removed on success and kept (path printed) on failure.
set -euo pipefail
SCRIPT=test_offline_install.sh
# shellcheck source=tools/lib/env_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env_common.sh"
MAIN_VENV=${MMSEG_TAO_VENV:-$DEFAULT_VENV}
[ -f "$MAIN_VENV/$READY_NAME" ] ||
  { echo "test_offline_install.sh: run tools/setup_env.sh first (no ready venv at $MAIN_VENV)" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mmseg-tao-offline.XXXXXX")
cleanup() {
  local rc=$?
  if [ "$rc" = 0 ]; then
    rm -rf "$TMP"
  else
    echo "test_offline_install.sh: FAILED (exit $rc), files kept in $TMP" >&2
  fi
}
trap cleanup EXIT
T0=$(date +%s)
lap() {
  local t
  t=$(date +%s)
  TIMES+=("$(printf '%-34s %4ss' "$1" "$((t - T_LAP))")")
  T_LAP=$t
}
TIMES=() T_LAP=$T0

# 1. Machine torch.
"$MAIN_VENV/bin/python" -m venv --without-pip "$TMP/machine"
MACHINE_SITE=$("$TMP/machine/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$MAIN_VENV/bin/python" - "$MACHINE_SITE" <<'PYEOF'
"""Symlink torch, torchvision and their installed dependencies into a site-packages dir."""
import importlib.metadata as md
import os
import sys

from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name

out = sys.argv[1]
todo, seen, dists = [('torch', ()), ('torchvision', ())], set(), {}
while todo:
    name, extras = todo.pop()
    if (canonicalize_name(name), extras) in seen:
        continue
    seen.add((canonicalize_name(name), extras))
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    dists[canonicalize_name(name)] = dist
    for line in dist.requires or ():
        req = Requirement(line)
        envs = [{'extra': e} for e in extras] or [{'extra': ''}]
        if req.marker is None or any(req.marker.evaluate(e) for e in envs):
            todo.append((req.name, tuple(sorted(req.extras))))
for dist in dists.values():
    for top in sorted({f.parts[0] for f in dist.files or ()} - {'..', '__pycache__'}):
        src, dst = dist.locate_file(top), os.path.join(out, top)
        if os.path.exists(src) and not os.path.lexists(dst):
            os.symlink(src, dst)
print('machine torch:', ' '.join(sorted(dists)))
PYEOF
"$TMP/machine/bin/python" -c 'import torch, torchvision; print("machine torch", torch.__version__, torchvision.__version__)'
if "$TMP/machine/bin/python" -c 'import mmcv' 2>/dev/null || "$TMP/machine/bin/python" -c 'import mmengine' 2>/dev/null; then
  echo "test_offline_install.sh: the machine-torch venv sees mmcv/mmengine" >&2; exit 1
fi
lap "machine torch (symlinks)"

# 2. Fill the wheelhouse (network).
PYV=$("$MAIN_VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYTHON="$MAIN_VENV/bin/python" bash "$REPO/tools/fill_wheelhouse.sh" "$TMP/wheels" --python-version "$PYV" |
  grep -vE '^ +[0-9.]+ MB  '
# mmcv: a wheel from the main set-up's cache, or (cache emptied since) a build from the sdist.
if ! ls "$TMP/wheels/$MMCV_SUBDIR"/*/mmcv-*.whl >/dev/null 2>&1; then
  echo "test_offline_install.sh: no cached mmcv wheel to copy; the offline install builds mmcv (8-10 min on 2 cores)"
fi
lap "fill_wheelhouse.sh"

# 3. Offline install.
NET=()
if unshare -rn true 2>/dev/null; then
  NET=(unshare -rn)
  echo "offline install without network (unshare -rn) and PIP_NO_INDEX=1"
else
  echo "offline install with PIP_NO_INDEX=1 (unshare -rn not permitted here)"
fi
env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 \
  USE_SYSTEM_TORCH=1 PYTHON="$TMP/machine/bin/python" MMSEG_TAO_CACHE_DIR="$TMP/mmcv-cache" \
  "${NET[@]}" bash "$REPO/tools/setup_env.sh" --wheelhouse "$TMP/wheels" --venv "$TMP/venv"
lap "setup_env.sh --wheelhouse"

# 4. Where everything comes from.
"$TMP/venv/bin/python" - "$TMP/venv" "$MACHINE_SITE" <<'PYEOF'
import os.path as osp
import sys

import mmseg_tao, mmseg.models, mmcv.ops, mmdeploy.apis  # noqa: E401,F401
import mmcv, mmdeploy, mmengine, mmseg, onnxruntime, timm, torch, torchvision
import modelopt, torchao  # noqa: E401  (the quantize task)

venv, machine = sys.argv[1:]
for mod in (mmcv, mmengine, mmseg, mmdeploy, onnxruntime, timm, modelopt, torchao):
    assert mod.__file__.startswith(venv + '/'), (mod.__name__, mod.__file__)
for mod in (torch, torchvision):
    assert mod.__file__.startswith(machine + '/'), (mod.__name__, mod.__file__)
print('offline venv: import mmseg_tao, mmseg.models, mmcv.ops, mmdeploy.apis ok; torch',
      torch.__version__, 'from the machine, mmcv', mmcv.__version__, 'from the wheelhouse')
PYEOF
lap "import check"

echo "test_offline_install.sh: passed in $(( $(date +%s) - T0 ))s:"
printf '  %s\n' "${TIMES[@]}"
