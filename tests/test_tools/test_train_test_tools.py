"""tools/train.py and tools/test.py with mmseg's arguments on a generated config."""
import glob
import os
import os.path as osp
import subprocess
import sys

import yaml

from mmseg_tao.spec import load_spec, spec_to_config, write_config
from seg_data import ISBI_PALETTE, make_dataset

TOOLS = osp.join(osp.dirname(__file__), '..', '..', 'tools')


def run(*args):
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_train_resume_and_test(tmp_path):
    img, ann = make_dataset(str(tmp_path / 'd'), n=4, values=(0, 255), gray_image=True)
    spec = dict(
        model=dict(input_height=64, input_width=64, backbone=dict(type='mit_b0'),
                   decode_head=dict(decoder_params=dict(embed_dim=32))),
        dataset=dict(input_type='grayscale', batch_size=2, workers_per_gpu=0,
                     repeat_data_times=1, palette=ISBI_PALETTE,
                     train_dataset=dict(img_dir=[img], ann_dir=[ann]),
                     val_dataset=dict(img_dir=img, ann_dir=ann)),
        train=dict(max_iters=2, checkpoint_interval=2, logging_interval=1,
                   trainer=dict(lr_config=dict(warmup_iters=1))))
    (tmp_path / 'spec.yaml').write_text(yaml.safe_dump(spec))
    cfg = str(tmp_path / 'cfg.py')
    write_config(spec_to_config(load_spec(str(tmp_path / 'spec.yaml')), resolve=False), cfg)
    work = str(tmp_path / 'work')

    run(osp.join(TOOLS, 'train.py'), cfg, '--work-dir', work)
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    # --resume without a path continues from the newest complete iter_N.pth.
    out = run(osp.join(TOOLS, 'train.py'), cfg, '--work-dir', work, '--resume',
              '--cfg-options', 'train_cfg.max_iters=4', 'param_scheduler.1.end=4')
    assert 'resumed epoch: 0, iter: 2' in out
    assert osp.isfile(osp.join(work, 'iter_4.pth'))

    show, masks = str(tmp_path / 'show'), str(tmp_path / 'masks')
    out = run(osp.join(TOOLS, 'test.py'), cfg, osp.join(work, 'iter_4.pth'), '--work-dir',
              str(tmp_path / 'test'), '--show-dir', show, '--out', masks)
    assert 'mIoU' in out
    # Every image drawn (mmseg's default draws every 50th) and every mask written.
    assert len(glob.glob(osp.join(show, '**', '*.png'), recursive=True)) == 4
    assert len(os.listdir(masks)) == 4
