"""A generated config trains with stock mmseg tools/train.py and tests with tools/test.py."""
import json
import os.path as osp
import subprocess
import sys

import mmseg
import pytest
import yaml

from mmseg_tao.spec import load_spec, spec_to_config, write_config
from seg_data import ISBI_PALETTE, make_dataset

MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')


@pytest.mark.slow  # training run in a subprocess
def test_generated_config_trains_and_tests(tmp_path):
    train_img, train_ann = make_dataset(str(tmp_path / 'train'), n=4, values=(0, 255),
                                        gray_image=True)
    val_img, val_ann = make_dataset(str(tmp_path / 'val'), n=2, values=(0, 255),
                                    gray_image=True)
    spec = dict(
        results_dir=str(tmp_path / 'results'),
        model=dict(input_height=64, input_width=64, backbone=dict(type='mit_b0'),
                   decode_head=dict(decoder_params=dict(embed_dim=32))),
        dataset=dict(input_type='grayscale', batch_size=2, workers_per_gpu=0,
                     repeat_data_times=2, palette=ISBI_PALETTE,
                     train_dataset=dict(img_dir=[train_img], ann_dir=[train_ann]),
                     val_dataset=dict(img_dir=val_img, ann_dir=val_ann)),
        train=dict(max_iters=2, checkpoint_interval=2, logging_interval=1, validate=True,
                   validation_interval=2, trainer=dict(lr_config=dict(warmup_iters=1))))
    spec_path = tmp_path / 'spec.yaml'
    spec_path.write_text(yaml.safe_dump(spec))
    cfg_path = str(tmp_path / 'cfg.py')
    write_config(spec_to_config(load_spec(str(spec_path), task='train')), cfg_path)

    work = tmp_path / 'work'
    run = subprocess.run([sys.executable, osp.join(MMSEG_TOOLS, 'train.py'), cfg_path,
                          '--work-dir', str(work)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert osp.isfile(work / 'iter_2.pth')
    # Two logged iterations with a finite loss, then validation with mIoU.
    logs = [json.loads(line) for p in sorted(work.glob('*/vis_data/scalars.json'))
            for line in open(p)]
    losses = [r['loss'] for r in logs if 'loss' in r]
    assert len(losses) == 2 and all(0 < x < 10 for x in losses)
    assert any('mIoU' in r for r in logs)

    run = subprocess.run([sys.executable, osp.join(MMSEG_TOOLS, 'test.py'), cfg_path,
                          str(work / 'iter_2.pth'), '--work-dir', str(tmp_path / 'test')],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert 'mIoU' in run.stdout + run.stderr
