"""tools/make_demo_dataset.py writes TAO-layout datasets that look like their classes."""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy import ndimage

from mmseg_tao.datasets import Palette, check_pairs, pair_files
from mmseg_tao.spec import load_spec

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'make_demo_dataset.py')
KINDS = ('membranes', 'shapes')
NUM = {'train': 6, 'val': 2}
SIZE = 64


def run_tool(out_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TOOL, str(out_dir), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def generate(out_dir, seed: int = 0, num_train: int = NUM['train'],
             num_val: int = NUM['val'], kind: str = 'both') -> str:
    proc = run_tool(out_dir, '--kind', kind, '--num-train', str(num_train),
                    '--num-val', str(num_val), '--size', str(SIZE), '--seed', str(seed))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def all_files(root) -> Dict[str, bytes]:
    """Relative path -> bytes of every file under ``root``."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            out[osp.relpath(path, root)] = open(path, 'rb').read()
    return out


def relative_spec(data: bytes, root) -> str:
    """A spec's content with its output directory taken out of every path."""
    return json.dumps(yaml.safe_load(data)).replace(str(root), '<OUT>')


def pairs(root, kind: str, split: Optional[str] = None) -> List[Tuple[np.ndarray, np.ndarray]]:
    """(image, mask) arrays of a kind, one split or all."""
    result = []
    for s in ([split] if split else list(NUM)):
        img_dir = osp.join(root, kind, 'images', s)
        for name in sorted(os.listdir(img_dir)):
            img = np.asarray(Image.open(osp.join(img_dir, name)))
            mask = np.asarray(Image.open(osp.join(root, kind, 'masks', s, name)))
            result.append((img, mask))
    return result


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')
    stdout = generate(out)
    return out, stdout


@pytest.mark.parametrize('kind', KINDS)
def test_layout_counts_and_pairing(dataset, kind):
    out, _ = dataset
    for split, n in NUM.items():
        img_dir = out / kind / 'images' / split
        ann_dir = out / kind / 'masks' / split
        images, masks = sorted(os.listdir(img_dir)), sorted(os.listdir(ann_dir))
        assert len(images) == n
        assert images == masks  # same stem (and suffix) for every image and mask
        assert all(name.endswith('.png') for name in images)
        for name in images:
            with Image.open(img_dir / name) as img, Image.open(ann_dir / name) as mask:
                assert img.size == mask.size == (SIZE, SIZE)
                assert img.mode == ('L' if kind == 'membranes' else 'RGB')
                assert mask.mode == 'L'
    assert sorted(os.listdir(out / kind)) == ['images', 'masks', 'spec.yaml']
    # Nothing left from the write-then-rename (no hidden temporary files).
    assert not [p for p in all_files(out / kind) if osp.basename(p).startswith('.')]


def test_stdout_reports_counts_shares_and_time(dataset):
    _, stdout = dataset
    assert '[membranes/train] 6 images 64x64' in stdout
    assert '[shapes/val] 2 images 64x64' in stdout
    assert 'foreground (membrane) ' in stdout and 'triangle ' in stdout and '%' in stdout
    assert 'spec.yaml' in stdout and ' s' in stdout.splitlines()[-1]


def test_membrane_masks_and_images(dataset):
    out, _ = dataset
    samples = pairs(out, 'membranes')
    membrane_pixels = 0
    for img, mask in samples:
        assert set(np.unique(mask)) == {0, 255}
        membrane = mask == 0
        membrane_pixels += membrane.sum()
        img = img.astype(np.float64)
        assert img.std() > 10  # not constant
        # Membranes (label 0) are dark, cell interiors bright.
        assert img[membrane].mean() < img[~membrane].mean() - 30
        # Membranes are thin lines: almost nothing survives a 5x5 erosion.
        thick = ndimage.binary_erosion(membrane, np.ones((5, 5)))
        assert thick.sum() <= 0.05 * membrane.sum()
        # ...that separate several cells.
        _, n_cells = ndimage.label(~membrane)
        assert n_cells >= 3
    share = membrane_pixels / (len(samples) * SIZE * SIZE)
    assert 0.05 <= share <= 0.40


def test_membrane_images_differ_from_mask_not_trivially(dataset):
    """The task is not a threshold: some cell pixels (organelles) are as dark as membranes."""
    out, _ = dataset
    dark_cell, cell = 0, 0
    for img, mask in pairs(out, 'membranes'):
        threshold = np.median(img[mask == 0])
        dark_cell += (img[mask == 255] <= threshold).sum()
        cell += (mask == 255).sum()
    assert dark_cell > 0.001 * cell


def test_shapes_masks_and_images(dataset):
    out, _ = dataset
    samples = pairs(out, 'shapes')
    present = set()
    redness: Dict[int, List[float]] = {1: [], 3: []}
    edge_ratio = []
    for img, mask in samples:
        values = set(np.unique(mask).tolist())
        assert values <= {0, 1, 2, 3}
        assert 0 in values and len(values) >= 2
        present |= values
        img = img.astype(np.float64)
        assert img.std(axis=(0, 1)).min() > 5  # not constant, in every channel
        for cls in redness:
            if (mask == cls).any():
                redness[cls].append((img[..., 0] - img[..., 2])[mask == cls].mean())
        # Colour changes where the class changes: image gradient is stronger on mask edges.
        edges = ndimage.morphological_gradient(mask, size=3) > 0
        grad = sum(np.hypot(*np.gradient(img[..., c])) for c in range(3))
        edge_ratio.append(grad[edges].mean() / grad[~edges].mean())
    assert present == {0, 1, 2, 3}
    # Class-specific colours: ellipses are redder than triangles on average.
    assert np.mean(redness[1]) > np.mean(redness[3]) + 40
    assert np.median(edge_ratio) > 1.5


def test_same_seed_same_bytes_other_seed_other_images(dataset, tmp_path):
    out, _ = dataset
    reference = all_files(out)
    generate(tmp_path / 'same', seed=0)
    same = all_files(tmp_path / 'same')
    assert same.keys() == reference.keys()
    for rel, data in reference.items():
        if rel.endswith('spec.yaml'):  # holds its own absolute paths
            assert relative_spec(data, out) == relative_spec(same[rel], tmp_path / 'same')
        else:
            assert same[rel] == data, rel

    generate(tmp_path / 'other', seed=1)
    other = all_files(tmp_path / 'other')
    assert other.keys() == reference.keys()
    for rel, data in reference.items():
        if rel.endswith('.png'):
            assert other[rel] != data, rel


def test_rerun_removes_stale_files_and_keeps_others(tmp_path):
    generate(tmp_path, num_train=4, num_val=2, kind='membranes')
    train_imgs = tmp_path / 'membranes' / 'images' / 'train'
    (train_imgs / '.train_0001.png.tmp').write_bytes(b'half')  # an interrupted write
    (train_imgs / 'mine.txt').write_text('not the tool\'s')
    generate(tmp_path, num_train=2, num_val=1, kind='membranes')
    assert sorted(os.listdir(train_imgs)) == ['mine.txt', 'train_0000.png', 'train_0001.png']
    assert sorted(os.listdir(tmp_path / 'membranes' / 'masks' / 'train')) == \
        ['train_0000.png', 'train_0001.png']
    for sub in ('images', 'masks'):
        assert os.listdir(tmp_path / 'membranes' / sub / 'val') == ['val_0000.png']
    assert not (tmp_path / 'shapes').exists()


@pytest.mark.parametrize('args', [['--num-train', '0'], ['--size', '8'],
                                  ['--kind', 'cats']])
def test_bad_arguments_are_refused(tmp_path, args):
    proc = run_tool(tmp_path / 'x', *args)
    assert proc.returncode == 2
    assert not (tmp_path / 'x').exists()


@pytest.mark.parametrize('kind,input_type,classes', [
    ('membranes', 'grayscale', ('foreground', 'background')),
    ('shapes', 'rgb', ('background', 'ellipse', 'box', 'triangle')),
])
def test_spec_loads_and_points_at_the_data(dataset, kind, input_type, classes):
    out, _ = dataset
    path = str(out / kind / 'spec.yaml')
    spec = load_spec(path, task='train')
    for task in ('evaluate', 'inference', 'export'):
        load_spec(path, task=task)
    ds = spec.dataset
    assert ds.input_type == input_type
    assert [e.seg_class for e in ds.palette] == list(classes)
    assert [e.label_id for e in ds.palette] == list(range(len(classes)))
    assert len({tuple(e.rgb) for e in ds.palette}) == len(classes)
    assert ds.repeat_data_times == 1 and ds.batch_size == 4 and ds.workers_per_gpu == 2
    expected_mean = [127.5] * 3 if kind == 'membranes' else [123.675, 116.28, 103.53]
    assert ds.img_norm_cfg.mean == expected_mean
    root = str(out / kind)
    assert ds.train_dataset.img_dir == [osp.join(root, 'images', 'train')]
    assert ds.train_dataset.ann_dir == [osp.join(root, 'masks', 'train')]
    assert ds.val_dataset.img_dir == ds.test_dataset.img_dir == osp.join(root, 'images', 'val')
    assert ds.val_dataset.ann_dir == ds.test_dataset.ann_dir == osp.join(root, 'masks', 'val')
    for d in (*ds.train_dataset.img_dir, *ds.train_dataset.ann_dir,
              ds.val_dataset.img_dir, ds.val_dataset.ann_dir):
        assert osp.isabs(d) and osp.isdir(d)
    assert spec.results_dir == osp.join(root, 'results')
    assert (spec.model.input_height, spec.model.input_width) == (SIZE, SIZE)
    assert spec.model.backbone.type == 'mit_b0'
    assert spec.model.decode_head.decoder_params.embed_dim == 256
    t = spec.train
    assert (t.max_iters, t.checkpoint_interval, t.logging_interval) == (300, 100, 20)
    assert t.validate and t.validation_interval == 100
    assert t.trainer.sf_optim.lr == 0.0006 and t.trainer.lr_config.warmup_iters == 20
    ckpt = osp.join(root, 'results', 'train', 'iter_300.pth')
    assert spec.evaluate.checkpoint == spec.inference.checkpoint == spec.export.checkpoint \
        == ckpt
    assert spec.export.onnx_file == osp.join(root, 'results', 'export', 'segformer.onnx')
    assert (spec.export.input_height, spec.export.input_width) == (SIZE, SIZE)
    # Raw key names exactly as TAO writes them.
    raw = yaml.safe_load(open(path))
    assert list(raw) == ['results_dir', 'model', 'dataset', 'train', 'evaluate', 'inference',
                         'export']


@pytest.mark.parametrize('kind', KINDS)
def test_dataset_passes_the_project_checker(dataset, kind):
    """Every pair decodes, sizes match and every mask value maps through the palette."""
    out, _ = dataset
    spec = load_spec(str(out / kind / 'spec.yaml'), task='train')
    palette = Palette.from_entries([
        dict(seg_class=e.seg_class, rgb=e.rgb, label_id=e.label_id,
             mapping_class=e.mapping_class) for e in spec.dataset.palette])
    for img_dir, ann_dir in ((spec.dataset.train_dataset.img_dir[0],
                              spec.dataset.train_dataset.ann_dir[0]),
                             (spec.dataset.val_dataset.img_dir,
                              spec.dataset.val_dataset.ann_dir)):
        found, problems = pair_files(img_dir, ann_dir, None, None)
        assert not problems
        report = check_pairs(found, palette, spec.dataset.input_type)
        assert report.problems == []
        assert report.pairs == len(os.listdir(img_dir))
        assert set(report.class_pixels) == set(range(palette.num_classes))
