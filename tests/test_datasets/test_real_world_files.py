"""A TAO user's own files work unchanged: TAO 6's pairing by sorted full file names, photos
with an EXIF orientation tag (read unrotated, as TAO does), camera JPEGs of odd sizes, and
0/255 masks read with ``input_type: rgb`` (a class vanishing into the ignore index).

Images are real JPEGs written by Pillow's encoder; configs are generated from specs.
"""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmseg.registry import DATASETS, MODELS
from PIL import Image

import mmseg_tao  # noqa: F401
from mmseg_tao.datasets import DatasetError, Palette, check_pairs, format_report
from mmseg_tao.datasets.tao_dataset import pair_sorted
from mmseg_tao.spec import load_spec, spec_to_config
from seg_data import ISBI_PALETTE, make_dataset

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'check_dataset.py')
ORIENTATION = 0x0112


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An RGB image whose rotations and flips all differ: gradients plus noise."""
    y, x = np.mgrid[:h, :w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                    (x * 3 + y) % 256], -1).astype(np.float32)
    img += np.random.default_rng(seed).normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def save_jpeg(path: str, img: np.ndarray, orientation: int = None, camera: bool = False):
    """A JPEG through Pillow's encoder, with an EXIF block like a camera's."""
    exif = Image.Exif()
    if camera:
        exif[0x010F], exif[0x0110] = 'TestCam', 'Model 1'  # Make, Model
    if orientation is not None:
        exif[ORIENTATION] = orientation
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path, 'JPEG', quality=90, exif=exif.tobytes())


def save_mask(path: str, mask: np.ndarray, orientation: int = None):
    os.makedirs(osp.dirname(path), exist_ok=True)
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        kwargs['exif'] = exif.tobytes()
    Image.fromarray(mask).save(path, **kwargs)


def pil_rgb(path: str) -> np.ndarray:
    """TAO 6's read: ``Image.open(path).convert('RGB')`` (no EXIF rotation)."""
    with Image.open(path) as img:
        return np.asarray(img.convert('RGB'))


def _mk(root: str, kind: str, name: str, split: str = 'train') -> str:
    """``root/kind/split/name``, its folder made."""
    os.makedirs(osp.join(root, kind, split), exist_ok=True)
    return osp.join(root, kind, split, name)


def tao5_spec(tmp_path, img_dir: str, ann_dir: str, **dataset) -> str:
    spec = dict(model=dict(input_height=64, input_width=64, backbone=dict(type='mit_b0'),
                           decode_head=dict(decoder_params=dict(embed_dim=32))),
                dataset=dict(batch_size=2, workers_per_gpu=0, repeat_data_times=1,
                             palette=ISBI_PALETTE,
                             train_dataset=dict(img_dir=[img_dir], ann_dir=[ann_dir]),
                             **dataset),
                train=dict(max_iters=2))
    path = osp.join(str(tmp_path), 'spec5.yaml')
    with open(path, 'w') as f:
        yaml.safe_dump(spec, f)
    return path


def tao6_spec(tmp_path, root: str) -> str:
    spec = {'model': {'backbone': {'type': 'mit_b0'},
                      'decode_head': {'decoder_params': {'embed_dim': 32}}},
            'dataset': {'segment': {'root_dir': root, 'batch_size': 2, 'img_size': 64,
                                    'workers': 0}},
            'train': {'num_epochs': 1}}
    path = osp.join(str(tmp_path), 'spec6.yaml')
    with open(path, 'w') as f:
        yaml.safe_dump(spec, f)
    return path


def train_dataset(spec_path: str):
    """The training dataset of the config generated from a spec."""
    cfg = spec_to_config(load_spec(spec_path, task='train'))
    ds_cfg = cfg['train_dataloader']['dataset']
    while ds_cfg['type'] != 'TAOSegDataset':
        ds_cfg = ds_cfg['dataset']
    return cfg, DATASETS.build(ds_cfg)


def loaded(ds, index: int) -> dict:
    """A sample after the dataset's image and mask loading steps only."""
    results = ds.get_data_info(index)
    for step in ds.pipeline.transforms[:2]:
        results = step(results)
    return results


# --------------------------------------------------------------------------- pairing
def test_tao6_pairing_sorts_full_file_names(tmp_path):
    """TAO 6 sorts full names: 'x-1.png' < 'x.png' ('-' < '.') and 'x-1_mask.png' <
    'x_mask.png', so x.png goes with x_mask.png. Sorting stems ('x' < 'x-1') paired them
    crosswise."""
    root = str(tmp_path / 'data')
    for name, size in (('x', (8, 8)), ('x-1', (8, 12))):
        img = photo(*size)
        Image.fromarray(img).save(_mk(root, 'images', f'{name}.png'))
        save_mask(_mk(root, 'masks', f'{name}_mask.png'), np.ones(size, np.uint8))
    img_dir, ann_dir = osp.join(root, 'images', 'train'), osp.join(root, 'masks', 'train')
    expected = [(osp.join(img_dir, 'x-1.png'), osp.join(ann_dir, 'x-1_mask.png')),
                (osp.join(img_dir, 'x.png'), osp.join(ann_dir, 'x_mask.png'))]
    assert pair_sorted(img_dir, ann_dir) == (expected, [])

    _, ds = train_dataset(tao6_spec(tmp_path, root))  # the TAO 6 spec form
    assert ds.pairing == 'sorted'
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [(d['img_path'], d['seg_map_path']) for d in infos] == expected
    for i in range(len(ds)):
        sample = loaded(ds, i)
        assert sample['img'].shape[:2] == sample['gt_seg_map'].shape
    report = check_pairs(expected, Palette.of(ISBI_PALETTE), decode=lambda p: np.asarray(
        Image.open(p)))
    assert report.problems == [] and report.warnings == []


def test_tao6_pairing_is_one_level_and_takes_every_file(tmp_path):
    """TAO 6 lists a split folder without descending and without a suffix filter: a WebP
    image is paired, a subfolder is listed (and named as a problem, TAO cannot open it)."""
    root = str(tmp_path)
    Image.fromarray(photo(8, 8)).save(_mk(root, 'images', 'a.png'))
    Image.fromarray(photo(8, 8, 1)).save(_mk(root, 'images', 'b.webp'), lossless=True)
    for name in ('a.png', 'b.png'):
        save_mask(_mk(root, 'masks', name), np.zeros((8, 8), np.uint8))
    Image.fromarray(photo(8, 8, 2)).save(_mk(root, 'images', 'c.png', 'train/more'))
    save_mask(_mk(root, 'masks', 'c.png', 'train/more'), np.zeros((8, 8), np.uint8))
    img_dir, ann_dir = osp.join(root, 'images', 'train'), osp.join(root, 'masks', 'train')
    pairs, problems = pair_sorted(img_dir, ann_dir)
    assert pairs[:2] == [(osp.join(img_dir, 'a.png'), osp.join(ann_dir, 'a.png')),
                         (osp.join(img_dir, 'b.webp'), osp.join(ann_dir, 'b.png'))]
    assert len(pairs) == 3 and len(problems) == 2
    assert problems[0].startswith(f'{img_dir}/more: a folder in a TAO 6 split folder')
    assert problems[1].startswith(f'{ann_dir}/more: a folder')


def test_check_data_of_a_tao6_dataset_reads_masks_by_tao6s_rule(tmp_path):
    """check_data on a TAO 6 config's dataset decodes masks as its LoadTAO6Annotations
    does: a value of no palette colour is class 0 there (TAO 6), not an error (TAO 5)."""
    root = str(tmp_path / 'data')
    Image.fromarray(photo(8, 8)).save(_mk(root, 'images', 'a.png'))
    save_mask(_mk(root, 'masks', 'a.png'), np.full((8, 8), 7, np.uint8))
    cfg = spec_to_config(load_spec(tao6_spec(tmp_path, root), task='train'))
    ds_cfg = cfg['train_dataloader']['dataset']
    ds = DATASETS.build(dict(ds_cfg, check_data=True))
    assert loaded(ds, 0)['gt_seg_map'].max() == 0


def test_checker_names_pairs_whose_names_do_not_correspond(tmp_path):
    """Sorted order pairs whatever the names: with a.png, b.png and a_mask.png, c_mask.png
    TAO 6 pairs b.png with c_mask.png; the check warns naming that pair only."""
    root = str(tmp_path)
    for name in ('a', 'b'):
        Image.fromarray(photo(8, 8)).save(_mk(root, 'images', f'{name}.png'))
    for name in ('a_mask', 'c_mask'):
        save_mask(_mk(root, 'masks', f'{name}.png'), np.zeros((8, 8), np.uint8))
    img_dir, ann_dir = osp.join(root, 'images', 'train'), osp.join(root, 'masks', 'train')
    pairs, problems = pair_sorted(img_dir, ann_dir)
    assert problems == []
    report = check_pairs(pairs, Palette.of(ISBI_PALETTE))
    assert report.problems == []
    assert report.warnings == [f'{img_dir}/b.png <-> {ann_dir}/c_mask.png: paired by sorted '
                               'order as TAO does; names do not correspond']
    assert '1 warning(s)' in format_report('train', report, ('fg', 'bg'))


@pytest.mark.parametrize('pairs,bad', [
    # x.png, x1.png / x1_mask.png, x_mask.png: sorted, '.' < '1' but '1' < '_': crosswise.
    ([('x.png', 'x1_mask.png'), ('x1.png', 'x_mask.png')], [0, 1]),
    ([('x.png', 'y_mask.png')], [0]),
    ([('x-1.png', 'x-1_mask.png'), ('x.png', 'x_mask.png')], []),
    ([('0001.jpg', 'label_0001.png'), ('0002.jpg', 'label-0002.png')], []),
    # Cityscapes: a convention that is no plain affix.
    ([(f'a_{i}_leftImg8bit.png', f'a_{i}_gtFine_labelIds.png') for i in range(3)]
     + [('a_3_leftImg8bit.png', 'a_4_gtFine_labelIds.png')], [3]),
    # A majority convention catches a pair that only looks like an affix.
    ([('a.png', 'a_mask.png'), ('b.png', 'b_mask.png'), ('x.png', 'x-1_mask.png')], [2]),
    ([('same.png', 'same.png'), ('other.jpg', 'other.png')], []),
])
def test_misnamed_pairs_rule(pairs, bad):
    from mmseg_tao.datasets.pairing import misnamed_pairs
    assert misnamed_pairs(pairs) == [pairs[i] for i in bad]


# --------------------------------------------------------------------------- EXIF
def _exif_dataset(root: str, tao6: bool):
    """One 48x64 JPEG with EXIF orientation 6 (viewers show it 64x48 rotated) and its
    unrotated 48x64 mask; TAO 6's layout or TAO 5's img/ann folders."""
    img = photo(48, 64)
    mask = np.zeros((48, 64), np.uint8)
    mask[:, :16] = 1  # a left stripe: asymmetric
    if tao6:
        img_path = _mk(root, 'images', 'photo.jpg')
        mask_path = _mk(root, 'masks', 'photo.png')
        mask = mask * 255  # label_transform: norm (TAO 6's default)
    else:
        img_path, mask_path = osp.join(root, 'img', 'photo.jpg'), osp.join(root, 'ann',
                                                                             'photo.png')
    save_jpeg(img_path, img, orientation=6)
    save_mask(mask_path, mask)
    return img_path, mask_path


@pytest.mark.parametrize('tao6', [False, True], ids=['tao5_spec', 'tao6_spec'])
def test_exif_oriented_jpeg_loads_unrotated(tmp_path, tao6):
    """mmcv's default decoding (cv2 IMREAD_COLOR) applies the EXIF orientation: the photo
    became 64x48 beside its 48x64 mask. Both spec forms read it as stored, pixel for pixel
    what TAO 6 reads (PIL, convert('RGB'))."""
    root = str(tmp_path / 'data')
    img_path, mask_path = _exif_dataset(root, tao6)
    spec = (tao6_spec(tmp_path, root) if tao6 else
            tao5_spec(tmp_path, osp.join(root, 'img'), osp.join(root, 'ann')))
    _, ds = train_dataset(spec)
    sample = loaded(ds, 0)
    assert sample['img_path'] == img_path
    np.testing.assert_array_equal(sample['img'][..., ::-1], pil_rgb(img_path))  # BGR
    assert sample['gt_seg_map'].shape == (48, 64)
    assert sample['gt_seg_map'][:, :16].min() == 1 and sample['gt_seg_map'][:, 16:].max() == 0
    torch.manual_seed(0)
    np.random.seed(0)
    for _ in range(4):  # the whole training pipeline, random steps included
        packed = ds[0]
        assert packed['inputs'].shape[1:] == packed['data_samples'].gt_sem_seg.shape


def test_checker_warns_about_exif_orientation(tmp_path):
    """The check names each file with an orientation tag (image or mask); no problem."""
    img_path, mask_path = _exif_dataset(str(tmp_path), tao6=False)
    save_mask(mask_path, np.zeros((48, 64), np.uint8), orientation=8)
    report = check_pairs([(img_path, mask_path)], Palette.of(ISBI_PALETTE))
    assert report.problems == []
    assert report.sizes == {(64, 48): 1}  # as stored
    assert len(report.warnings) == 2
    assert report.warnings[0].startswith(
        f'{img_path}: EXIF orientation 6 (viewers show it rotated 90 degrees clockwise) is '
        'not applied: read unrotated, as TAO does')
    assert report.warnings[1].startswith(f'{mask_path}: EXIF orientation 8')


# --------------------------------------------------------------------------- 0/255 masks
def test_binary_masks_read_as_rgb_lose_a_class(tmp_path):
    """0/255 masks with input_type rgb (the documented default): 255 is the ignore index,
    the palette's label_id 1 class gets no pixels. A problem naming the key and the fix;
    input_type grayscale has none; check_data refuses to train."""
    img, ann = make_dataset(str(tmp_path), n=3, size=(40, 60), values=(0, 255))
    pairs = [(osp.join(img, f), osp.join(ann, f)) for f in sorted(os.listdir(img))]
    palette = Palette.of(ISBI_PALETTE)
    report = check_pairs(pairs, palette, 'rgb')
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert problem.startswith("class 'background' (label_id 1) has no pixels, while value(s) "
                              f'255 in 3 mask(s) (e.g. {ann}/img_000.png), 25.0% of the mask '
                              'pixels, became the ignore index')
    assert 'dataset.input_type' in problem
    assert problem.endswith('Fix: set dataset.input_type: grayscale')
    assert report.class_pixels.get(1, 0) == 0
    assert check_pairs(pairs, palette, 'grayscale').problems == []

    # A second directory pair filling the same report: still one problem.
    img2, ann2 = make_dataset(str(tmp_path / 'more'), n=1, size=(40, 60), values=(0, 255))
    check_pairs([(osp.join(img2, 'img_000.png'), osp.join(ann2, 'img_000.png'))], palette,
                'rgb', report=report)
    assert len(report.problems) == 1 and '25.0%' in report.problems[0]

    with pytest.raises(DatasetError, match='input_type: grayscale'):
        DATASETS.build(dict(type='TAOSegDataset', img_dirs=img, ann_dirs=ann,
                            palette=ISBI_PALETTE, pipeline=[], check_data=True))


def test_absent_class_beside_a_void_label_is_no_problem(tmp_path):
    """VOC-like masks (255 = void) whose split lacks one class are not binary masks."""
    palette = Palette.of([dict(seg_class=c, rgb=[i, i, i], label_id=i, mapping_class=c)
                          for i, c in enumerate(('bg', 'car', 'sky'))])
    img, ann = make_dataset(str(tmp_path), n=2, values=(0, 2, 255))
    pairs = [(osp.join(img, f), osp.join(ann, f)) for f in sorted(os.listdir(img))]
    report = check_pairs(pairs, palette, 'rgb')
    assert report.problems == [] and report.class_pixels.get(1, 0) == 0


@pytest.mark.slow  # tools/check_dataset.py in a subprocess
def test_check_dataset_tool_exits_1_on_binary_masks_read_as_rgb(tmp_path):
    img, ann = make_dataset(str(tmp_path), n=2, values=(0, 255))
    run = subprocess.run([sys.executable, TOOL, tao5_spec(tmp_path, img, ann)],
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'Fix: set dataset.input_type: grayscale' in run.stdout
    assert '1 problem(s) found' in run.stdout


# --------------------------------------------------------------------------- camera JPEGs
def test_camera_jpegs_of_odd_size_check_and_train(tmp_path):
    """Camera-like 641x479 JPEGs (one a portrait shot: orientation 6) with 0/1 PNG masks of
    the stored size: the check passes (warning about the tag), and one training step of
    the generated config runs on the batch."""
    root = str(tmp_path)
    for i, orientation in enumerate((None, 6)):
        mask = np.zeros((479, 641), np.uint8)
        mask[100:300, 50 + 100 * i:400] = 1
        save_jpeg(osp.join(root, 'img', f'DSC_{i:04d}.JPG'), photo(479, 641, i),
                  orientation=orientation, camera=True)
        save_mask(osp.join(root, 'ann', f'DSC_{i:04d}.png'), mask)
    img_dir, ann_dir = osp.join(root, 'img'), osp.join(root, 'ann')
    pairs = [(osp.join(img_dir, f'DSC_{i:04d}.JPG'), osp.join(ann_dir, f'DSC_{i:04d}.png'))
             for i in range(2)]
    report = check_pairs(pairs, Palette.of(ISBI_PALETTE))
    assert report.problems == [] and report.sizes == {(641, 479): 2}
    assert [w.split(':')[0] for w in report.warnings] == [pairs[1][0]]

    cfg, ds = train_dataset(tao5_spec(tmp_path, img_dir, ann_dir))
    assert len(ds) == 2
    for i in range(2):
        sample = loaded(ds, i)
        np.testing.assert_array_equal(sample['img'][..., ::-1], pil_rgb(pairs[i][0]))
        assert sample['gt_seg_map'].shape == (479, 641)
    torch.manual_seed(0)
    np.random.seed(0)
    batch = pseudo_collate([ds[0], ds[1]])
    for inputs, sample in zip(batch['inputs'], batch['data_samples']):
        assert inputs.shape[1:] == sample.gt_sem_seg.shape  # crops of up to 64x64
    model = MODELS.build(cfg['model'])
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(batch, optim)
    assert torch.isfinite(log_vars['loss'])
