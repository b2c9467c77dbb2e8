"""tools/prepare_isbi.py (ISBI 2012 TIFF stacks or synthetic) and the headline command,
`python tools/train.py configs/segformer_isbi.py`, on a fresh checkout."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmseg_tao.datasets import Palette, check_pairs
from seg_data import ISBI_PALETTE

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TOOL = osp.join(ROOT, 'tools', 'prepare_isbi.py')


def run(*args, cwd=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=900, cwd=cwd)


def write_stack(path, pages):
    first, *rest = [Image.fromarray(p) for p in pages]
    first.save(path, save_all=True, append_images=rest)


def test_isbi_tiff_stacks_become_taos_folders(tmp_path):
    rng = np.random.default_rng(0)
    volume = [rng.integers(0, 256, (40, 48), dtype=np.uint8) for _ in range(6)]
    labels = [np.where(rng.random((40, 48)) < 0.2, 0, 255).astype(np.uint8) for _ in range(6)]
    write_stack(tmp_path / 'train-volume.tif', volume)
    write_stack(tmp_path / 'train-labels.tif', labels)
    out = tmp_path / 'isbi'
    proc = run(TOOL, str(out), '--volume', str(tmp_path / 'train-volume.tif'),
               '--labels', str(tmp_path / 'train-labels.tif'), '--num-val', '2')
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out / 'images' / 'train')) == [f'slice_0{i}.png' for i in range(4)]
    assert sorted(os.listdir(out / 'masks' / 'val')) == ['slice_04.png', 'slice_05.png']
    for i, split in enumerate(['train'] * 4 + ['val'] * 2):
        name = f'slice_{i:02d}.png'
        assert np.array_equal(np.array(Image.open(out / 'images' / split / name)), volume[i])
        assert np.array_equal(np.array(Image.open(out / 'masks' / split / name)), labels[i])
    # Mismatched stacks and missing files are named.
    write_stack(tmp_path / 'short.tif', labels[:3])
    proc = run(TOOL, str(tmp_path / 'x'), '--volume', str(tmp_path / 'train-volume.tif'),
               '--labels', str(tmp_path / 'short.tif'))
    assert proc.returncode != 0 and 'has 6 slices but' in proc.stderr
    proc = run(TOOL, str(tmp_path / 'x'), '--volume', 'nope.tif', '--labels', 'nope2.tif')
    assert 'nope.tif: no such file' in proc.stderr and 'Traceback' not in proc.stderr


@pytest.mark.slow  # a training run in a subprocess
def test_headline_command_on_a_fresh_checkout(tmp_path):
    """Without data: a message naming the command that makes it (no traceback); with the
    synthetic data that command makes, the example config trains (shortened here)."""
    train = [osp.join(ROOT, 'tools', 'train.py'), osp.join(ROOT, 'configs', 'segformer_isbi.py'),
             '--work-dir', str(tmp_path / 'work')]
    proc = run(*train, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'image directory data/isbi/images/train does not exist' in proc.stderr
    assert 'mmseg-tao prepare-isbi data/isbi' in proc.stderr
    assert 'Traceback' not in proc.stderr
    proc = run(TOOL, 'data/isbi', '--num-train', '2', '--num-val', '1', '--size', '64',
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    img, ann = tmp_path / 'data/isbi/images/train', tmp_path / 'data/isbi/masks/train'
    pairs = [(str(img / f), str(ann / f)) for f in sorted(os.listdir(img))]
    report = check_pairs(pairs, Palette.from_entries(ISBI_PALETTE), 'grayscale')
    assert report.pairs == 2 and not report.problems and not report.warnings
    proc = run(*train, '--cfg-options', 'train_cfg.max_iters=1', 'model.backbone.type=mit_b0',
               'train_dataloader.batch_size=1', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False', cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert osp.isfile(tmp_path / 'work' / 'iter_1.pth')
