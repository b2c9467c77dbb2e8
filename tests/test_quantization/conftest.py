"""A small trained SegFormer for the quantize tests: the shapes demo data (64x64, 4 classes),
mit_b0 with a 64-wide head trained from scratch on the CPU, once per test session; and its
fp32 mIoU on the validation images (quant_utils.miou, the reference each backend is compared
with)."""
import os.path as osp

import pytest

TRAIN_ITERS = 80


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    """``{'spec', 'root', 'checkpoint', 'calib'}``: the demo spec, its folder, the trained
    checkpoint and the calibration folder (the validation images)."""
    from mmseg_tao.apis import train
    from mmseg_tao.datasets.demo import make_kind
    root = tmp_path_factory.mktemp('quant')
    spec = make_kind(str(root), 'shapes', dict(train=24, val=8), 64, 0)
    train(spec, [f'train.max_iters={TRAIN_ITERS}', f'train.checkpoint_interval={TRAIN_ITERS}',
                 'train.validate=false', 'dataset.batch_size=4',
                 'model.decode_head.decoder_params.embed_dim=64'])
    folder = osp.dirname(spec)
    return dict(spec=spec, root=folder,
                checkpoint=osp.join(folder, 'results', 'train', f'iter_{TRAIN_ITERS}.pth'),
                calib=osp.join(folder, 'images', 'val'),
                overrides=['model.decode_head.decoder_params.embed_dim=64'])

