"""mmseg 1.2.2's own tools (``mmseg/.mim/tools``, run from the installed package) on a
config made by tools/make_demo_dataset.py + tools/spec2cfg.py.

The tools import mmseg_tao only through the config's ``custom_imports``; the fixes they
need are in :mod:`mmseg_tao.compat.mmseg_tools`.
"""
import glob
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys

import mmseg
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # each tool runs in a subprocess

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STOCK = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
STOCK_CONFIGS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')
# One thread per process: 2 cores shared with other jobs make every forward pass of a
# multi-threaded torch wait on the others (seconds instead of milliseconds).
ENV = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', MPLBACKEND='Agg')
CLASSES = ('background', 'ellipse', 'box', 'triangle')
PALETTE = np.array([[0, 0, 0], [220, 20, 60], [0, 160, 80], [30, 90, 230]])


def run(cwd, script, *args, ok=True):
    proc = subprocess.run([sys.executable, script, *map(str, args)], cwd=str(cwd), env=ENV,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    if ok:
        assert proc.returncode == 0, out[-4000:]
    return out


def stock(name):
    return osp.join(STOCK, name)


def miou(log: str) -> float:
    line = next(x for x in log.splitlines() if 'mIoU:' in x)
    return float(line.split('mIoU:')[1].split()[0])


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """Demo data (8 train / 4 val, 64x64), its config and mmseg's train.py run on it for
    4 iterations."""
    root = tmp_path_factory.mktemp('stock_tools')
    run(root, osp.join(REPO, 'tools', 'make_demo_dataset.py'), root / 'data', '--kind',
        'shapes', '--size', 64, '--num-train', 8, '--num-val', 4)
    cfg = root / 'cfg.py'
    run(root, osp.join(REPO, 'tools', 'spec2cfg.py'), '-o', cfg,
        root / 'data' / 'shapes' / 'spec.yaml', 'train.max_iters=4',
        'train.validation_interval=4', 'train.checkpoint_interval=4',
        'model.input_height=64', 'model.input_width=64')
    train_log = run(root, stock('train.py'), cfg, '--work-dir', root / 'work')
    return dict(root=root, cfg=cfg, work=root / 'work', ckpt=root / 'work' / 'iter_4.pth',
                data=root / 'data' / 'shapes', train_log=train_log)


@pytest.fixture(scope='module')
def tested(demo):
    """mmseg's test.py with --out and --show-dir (and every image drawn)."""
    root = demo['root']
    log = run(root, stock('test.py'), demo['cfg'], demo['ckpt'], '--work-dir', root / 'test',
              '--out', root / 'pred', '--show-dir', root / 'show',
              # SegVisualizationHook draws every 50th image unless told otherwise.
              '--cfg-options', 'default_hooks.visualization.interval=1')
    return dict(log=log, pred=root / 'pred', show=root / 'show')


def test_train_writes_checkpoint(demo):
    from mmengine.runner.checkpoint import _load_checkpoint

    import mmseg_tao  # noqa: F401  (weights_only loading of mmengine checkpoints)
    assert 'Saving checkpoint at 4 iterations' in demo['train_log']
    assert 'mIoU:' in demo['train_log']  # validation at iteration 4
    ckpt = _load_checkpoint(str(demo['ckpt']), map_location='cpu')
    assert ckpt['meta']['iter'] == 4
    assert tuple(ckpt['state_dict']['decode_head.linear_pred.weight'].shape) == (4, 256, 1, 1)
    assert ckpt['meta']['dataset_meta']['classes'] == CLASSES
    with open(demo['work'] / 'last_checkpoint') as f:
        assert f.read().strip().endswith('iter_4.pth')


def test_test_miou_out_and_show_dir(demo, tested):
    printed = miou(tested['log'])
    # --out: one class-id PNG per val image; the printed mIoU is theirs against the masks.
    names = sorted(os.listdir(demo['data'] / 'images' / 'val'))
    assert sorted(os.listdir(tested['pred'])) == names
    inter, union = np.zeros(4), np.zeros(4)
    for name in names:
        pred = np.asarray(Image.open(tested['pred'] / name))
        gt = np.asarray(Image.open(demo['data'] / 'masks' / 'val' / name))
        assert pred.shape == gt.shape and set(np.unique(pred)) <= {0, 1, 2, 3}
        for k in range(4):
            inter[k] += np.sum((pred == k) & (gt == k))
            union[k] += np.sum((pred == k) | (gt == k))
    assert printed == pytest.approx(np.nanmean(inter / union) * 100, abs=0.011)
    # --show-dir: every val image drawn, ground truth beside prediction.
    drawn = glob.glob(str(tested['show'] / '**' / '*.png'), recursive=True)
    assert len(drawn) == 4
    assert all(Image.open(p).size == (128, 64) for p in drawn)


def test_test_tta(demo, tested):
    log = run(demo['root'], stock('test.py'), demo['cfg'], demo['ckpt'], '--work-dir',
              demo['root'] / 'tta', '--tta')
    assert "type='SegTTAModel'" in log
    # The generated tta_pipeline is TAO's: one scale, no flip; so the same predictions.
    assert miou(log) == miou(tested['log'])


def _params(state_dict) -> int:
    buffers = ('running_mean', 'running_var', 'num_batches_tracked')
    return sum(v.numel() for k, v in state_dict.items() if not k.endswith(buffers))


def test_get_flops(demo):
    from mmengine.analysis.print_helper import _format_size
    from mmengine.runner.checkpoint import _load_checkpoint

    import mmseg_tao  # noqa: F401
    log = run(demo['root'], stock('analysis_tools/get_flops.py'), demo['cfg'],
              '--shape', 64, 64)
    assert 'Input shape: (64, 64)' in log
    flops = re.search(r'^Flops: ([\d.]+)([KMG]?)$', log, re.M)
    assert flops and float(flops.group(1)) > 0 and flops.group(2) in 'MG'
    # Parameters by hand: the decode head's, from its shapes (MLPs C_i -> 256, 1x1 fuse
    # conv 4*256 -> 256 without bias + BN, 1x1 prediction 256 -> 4), and all of the
    # trained checkpoint's tensors except BN statistics.
    e = 256
    head = sum(c * e + e for c in (32, 64, 160, 256)) + 4 * e * e + 2 * e + e * 4 + 4
    state_dict = _load_checkpoint(str(demo['ckpt']), map_location='cpu')['state_dict']
    assert _params({k: v for k, v in state_dict.items()
                    if k.startswith('decode_head.')}) == head == 395780
    assert f'Params: {_format_size(_params(state_dict))}\n' in log  # 3.715M


def test_get_flops_stock_config_with_custom_imports(tmp_path):
    """A stock mmseg config gets the fix by importing mmseg_tao (custom_imports)."""
    base = osp.join(STOCK_CONFIGS, 'segformer', 'segformer_mit-b0_8xb2-160k_ade20k-512x512.py')
    cfg = tmp_path / 'stock.py'
    cfg.write_text(f"_base_ = [{base!r}]\ncustom_imports = dict(imports=['mmseg_tao'])\n")
    log = run(tmp_path, stock('analysis_tools/get_flops.py'), cfg, '--shape', 64)
    # MiT-B0 (3,319,392, as ours) + SegformerHead for ADE20K's 150 classes: 4 x (1x1 conv
    # C_i -> 256 + BN), fuse 1024 -> 256 + BN, 1x1 conv 256 -> 150 with bias.
    head = sum(c * 256 + 512 for c in (32, 64, 160, 256)) + 1024 * 256 + 512 + 256 * 150 + 150
    assert 3319392 + head == 3753718
    assert re.search(r'^Params: 3\.754M$', log, re.M), log[-2000:]


def test_benchmark_prints_finite_fps(demo):
    root = demo['root']
    # benchmark.py reports only when it reaches image 200; mmseg_tao warns on fewer
    # (see test_mmseg_tools_compat.py). Repeat the 4 val images 50 times.
    cfg = root / 'bench_cfg.py'
    cfg.write_text(demo['cfg'].read_text() + "\ntest_dataloader['dataset'] = dict("
                   "type='RepeatDataset', times=50, dataset=test_dataloader['dataset'])\n")
    log = run(root, stock('analysis_tools/benchmark.py'), cfg, demo['ckpt'], '--work-dir',
              root / 'bench', '--log-interval', 100)
    assert 'benchmark.py reports fps only' not in log
    fps = float(re.search(r'Average fps of 1 evaluations: (\S+)', log).group(1))
    assert math.isfinite(fps) and fps > 0
    (result, ) = glob.glob(str(root / 'bench' / 'fps_*.json'))
    with open(result) as f:
        assert json.load(f)['overall_fps_1'] == round(fps, 2)


@pytest.mark.parametrize('script', ['analysis_tools/browse_dataset.py',
                                    'misc/browse_dataset.py'])
def test_browse_dataset(demo, script, tmp_path):
    run(tmp_path, stock(script), demo['cfg'], '--output-dir', tmp_path / 'out', '--not-show')
    drawn = sorted(glob.glob(str(tmp_path / 'out' / '**' / '*.png'), recursive=True))
    names = sorted(os.listdir(demo['data'] / 'images' / 'train'))
    assert [osp.basename(p).split('.png')[0] + '.png' for p in drawn] == names
    # Each pixel is 0.2 * (augmented) image + 0.8 * the palette colour of its ground-truth
    # class, so it lies in the box [0.8 * colour, 0.8 * colour + 51] of some class (labels
    # written on the image are the exception).
    low = np.floor(PALETTE * 0.8) - 1
    seen, inside, total = set(), 0, 0
    for path in drawn:
        img = np.asarray(Image.open(path).convert('RGB')).reshape(-1, 1, 3).astype(int)
        in_box = ((img >= low) & (img <= low + 53)).all(-1)  # pixels x classes
        inside, total = inside + in_box.any(1).sum(), total + len(img)
        seen |= {k for k in range(4) if in_box[:, k].sum() > 10}
    assert inside / total > 0.9
    assert seen == {0, 1, 2, 3}


def test_confusion_matrix(demo, tested, tmp_path):
    # mmseg 1.2.2 reads the prediction PNGs test.py --out writes (a directory, not a .pkl).
    run(tmp_path, stock('analysis_tools/confusion_matrix.py'), demo['cfg'], tested['pred'],
        tmp_path / 'cm')
    plot = Image.open(tmp_path / 'cm' / 'confusion_matrix.png')
    # figsize (2 n, 1.6 n) inches at 300 dpi for the n = 4 classes of the config.
    assert plot.size == (2400, 1920)
    assert len(np.unique(np.asarray(plot.convert('L')))) > 10
