"""Bad data caught before training (check_data) and tools/check_dataset.py."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import yaml
from mmseg.registry import DATASETS
from PIL import Image

import mmseg_tao  # noqa: F401
from mmseg_tao.datasets import DatasetError
from seg_data import ISBI_PALETTE, make_dataset

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'check_dataset.py')


def _break(img, ann):
    """Four kinds of bad file in one dataset."""
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(osp.join(ann, 'img_000.png'))  # size
    data = open(osp.join(img, 'img_001.png'), 'rb').read()
    open(osp.join(img, 'img_001.png'), 'wb').write(data[:len(data) // 2])  # truncated image
    open(osp.join(ann, 'img_002.png'), 'wb').write(b'not a png at all')  # unreadable mask
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(osp.join(ann, 'img_003.png'))


def test_check_data_names_every_bad_file(tmp_path):
    img, ann = make_dataset(str(tmp_path), n=5)
    _break(img, ann)
    cfg = dict(type='TAOSegDataset', img_dirs=img, ann_dirs=ann, palette=ISBI_PALETTE,
               pipeline=[])
    DATASETS.build(cfg)  # without check_data nothing is read yet
    with pytest.raises(DatasetError) as err:
        DATASETS.build(dict(cfg, check_data=True))
    msg = str(err.value)
    assert f"{ann}/img_000.png: mask is 48x32 but image {img}/img_000.png is 64x64" in msg
    assert f'{img}/img_001.png: unreadable or truncated image' in msg
    assert f'{ann}/img_002.png: unreadable or truncated mask' in msg
    assert f'{ann}/img_003.png: value(s) [7] are not a label_id of the palette' in msg
    assert 'img_004' not in msg


def _spec(tmp_path, img, ann):
    path = tmp_path / 'spec.yaml'
    path.write_text(yaml.safe_dump(dict(dataset=dict(
        palette=ISBI_PALETTE, train_dataset=dict(img_dir=[img], ann_dir=[ann])))))
    return str(path)


@pytest.mark.slow  # tools/check_dataset.py in subprocesses
def test_check_dataset_tool(tmp_path):
    img, ann = make_dataset(str(tmp_path / 'ok'), n=3, size=(40, 60), values=(0, 1))
    run = subprocess.run([sys.executable, TOOL, _spec(tmp_path, img, ann)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert '[train] 3 image/mask pairs' in out
    assert 'image sizes: 1 distinct; most common 60x40 (3)' in out
    # Class shares: each image is a quarter of class 1 (a 20x30 rectangle in 40x60).
    line = next(x for x in out.splitlines() if 'background' in x)
    assert float(line.split()[2]) == pytest.approx(25.0)
    assert out.strip().endswith('dataset OK')

    bad_img, bad_ann = make_dataset(str(tmp_path / 'bad'), n=5)
    _break(bad_img, bad_ann)
    os.remove(osp.join(bad_ann, 'img_004.png'))
    run = subprocess.run([sys.executable, TOOL, _spec(tmp_path, bad_img, bad_ann)],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert '5 problem(s) found' in run.stdout
    assert 'without a mask' in run.stdout and 'img_004.png' in run.stdout

    run = subprocess.run([sys.executable, TOOL, str(tmp_path / 'missing.yaml')],
                         capture_output=True, text=True)
    assert run.returncode == 2 and 'missing.yaml: no such file' in run.stderr


def test_grayscale_masks_without_foreground_values_are_named(tmp_path):
    """input_type grayscale binarises as value / 255 > 0.5 (TAO): 0/1 masks would train as
    all background. The check warns, naming the file and its values; 0/255 masks pass."""
    from mmseg_tao.datasets import check_pairs, format_report
    from mmseg_tao.datasets.palette import Palette
    palette = Palette.from_entries(ISBI_PALETTE)
    img, ann = make_dataset(str(tmp_path / 'ok'), n=2, values=(0, 255), gray_image=True)
    pairs = [(osp.join(img, f), osp.join(ann, f)) for f in sorted(os.listdir(img))]
    report = check_pairs(pairs, palette, 'grayscale')
    assert not report.warnings and not report.problems
    img, ann = make_dataset(str(tmp_path / 'ids'), n=2, values=(0, 1), gray_image=True)
    pairs = [(osp.join(img, f), osp.join(ann, f)) for f in sorted(os.listdir(img))]
    report = check_pairs(pairs, palette, 'grayscale')
    assert not report.problems and len(report.warnings) == 2
    assert report.warnings[0].startswith(f'{ann}/img_000.png: values {{0, 1}} and none '
                                         'above 127')
    assert report.class_pixels.get(1, 0) == 0  # what TAO's rule makes of them
    assert '2 warning(s)' in format_report('train', report, palette.classes)
