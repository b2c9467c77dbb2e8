"""TAOSegDataset: pairing, palettes, grayscale, colour masks, repeat, and bad data."""
import os

import numpy as np
import pytest
from mmseg.registry import DATASETS
from PIL import Image

import mmseg_tao  # noqa: F401
from mmseg_tao.datasets import DatasetError, MaskValueError, Palette
from seg_data import ISBI_PALETTE, make_dataset, write_pair

PALETTE3 = [dict(seg_class='bg', label_id=0, mapping_class='bg', rgb=[0, 0, 0]),
            dict(seg_class='car', label_id=1, mapping_class='car', rgb=[255, 0, 0]),
            dict(seg_class='truck', label_id=2, mapping_class='car', rgb=[0, 255, 0]),
            dict(seg_class='sky', label_id=3, mapping_class='sky', rgb=[0, 0, 255])]
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadTAOAnnotations')]


def build(**kwargs):
    kwargs.setdefault('pipeline', PIPELINE)
    return DATASETS.build(dict(type='TAOSegDataset', **kwargs))


def test_pairs_by_relative_path_and_stem(tmp_path):
    a_img, a_ann = str(tmp_path / 'a' / 'img'), str(tmp_path / 'a' / 'ann')
    mask = np.zeros((8, 8), np.uint8)
    write_pair(a_img, a_ann, 'x/one', mask, img_ext='.jpg')
    write_pair(a_img, a_ann, 'y/one', mask + 1, img_ext='.bmp')  # same stem, other folder
    b_img, b_ann = make_dataset(str(tmp_path / 'b'), n=3)
    ds = build(img_dirs=[a_img, b_img], ann_dirs=[a_ann, b_ann], palette=ISBI_PALETTE)
    assert len(ds) == 5  # every directory pair is used
    infos = [ds.get_data_info(i) for i in range(2)]
    paths = [(os.path.relpath(d['img_path'], tmp_path),
              os.path.relpath(d['seg_map_path'], tmp_path)) for d in infos]
    assert paths == [('a/img/x/one.jpg', 'a/ann/x/one.png'), ('a/img/y/one.bmp',
                                                              'a/ann/y/one.png')]
    assert ds.metainfo['classes'] == ('foreground', 'background')
    assert ds.metainfo['palette'] == [[0, 0, 0], [255, 255, 255]]


def test_id_masks_with_merge(tmp_path):
    img, ann = str(tmp_path / 'img'), str(tmp_path / 'ann')
    mask = np.array([[0, 1, 2, 3, 255]] * 4, np.uint8)
    write_pair(img, ann, 'm', mask)
    out = build(img_dirs=img, ann_dirs=ann, palette=PALETTE3)[0]
    # bg=0, car(+truck)=1, sky=2; 255 stays ignore.
    np.testing.assert_array_equal(out['gt_seg_map'][0], [0, 1, 1, 2, 255])
    assert out['img'].shape == (4, 5, 3)


def test_rgb_colour_masks(tmp_path):
    img, ann = str(tmp_path / 'img'), str(tmp_path / 'ann')
    mask = np.array([[0, 1, 2, 3]] * 2, np.uint8)
    write_pair(img, ann, 'm', mask, rgb_lut={e['label_id']: e['rgb'] for e in PALETTE3})
    out = build(img_dirs=img, ann_dirs=ann, palette=PALETTE3)[0]
    np.testing.assert_array_equal(out['gt_seg_map'], [[0, 1, 1, 2]] * 2)


def test_grayscale_isbi(tmp_path):
    img, ann = make_dataset(str(tmp_path), n=1, values=(0, 255), gray_image=True)
    raw = np.array(Image.open(os.path.join(ann, 'img_000.png')))
    ds = build(img_dirs=img, ann_dirs=ann, palette=ISBI_PALETTE, input_type='grayscale')
    out = ds[0]
    assert out['img'].shape == raw.shape + (3, )  # single-channel image loaded as 3 channels
    # TAO: mask / 255 > 0.5 -> label 1 ('background' in ISBI's palette).
    np.testing.assert_array_equal(out['gt_seg_map'], (raw > 127).astype(np.uint8))


def test_repeat_and_stock_pipeline(tmp_path):
    img, ann = make_dataset(str(tmp_path), n=3, values=(0, 1))
    ds = DATASETS.build(dict(type='RepeatDataset', times=4, dataset=dict(
        type='TAOSegDataset', img_dirs=img, ann_dirs=ann, palette=ISBI_PALETTE,
        pipeline=PIPELINE + [dict(type='RandomResize', scale=(64, 64), ratio_range=(0.5, 1.5),
                                  keep_ratio=True),
                             dict(type='RandomCrop', crop_size=(32, 32), cat_max_ratio=0.9),
                             dict(type='RandomFlip', prob=0.5),
                             dict(type='PhotoMetricDistortion'),
                             dict(type='PackSegInputs')])))
    assert len(ds) == 12
    sample = ds[5]
    assert tuple(sample['inputs'].shape) == (3, 32, 32)
    assert set(np.unique(sample['data_samples'].gt_sem_seg.data.numpy())) <= {0, 1, 255}


def test_iou_metric_on_ground_truth(tmp_path):
    from mmseg.evaluation import IoUMetric
    img, ann = make_dataset(str(tmp_path), n=2, values=(0, 1))
    ds = build(img_dirs=img, ann_dirs=ann, palette=ISBI_PALETTE,
               pipeline=PIPELINE + [dict(type='PackSegInputs')])
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = ds.metainfo
    for i in range(len(ds)):
        gt = ds[i]['data_samples'].gt_sem_seg.data
        pred = gt.clone()
        pred[0, 0, :5] = 1 - pred[0, 0, :5]  # 5 wrong pixels
        metric.process([], [dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=gt))])
    res = metric.compute_metrics(metric.results)
    assert 90 < res['mIoU'] < 100


def test_bad_data_is_named(tmp_path):
    img, ann = make_dataset(str(tmp_path / 'd'), n=3)
    os.remove(os.path.join(ann, 'img_001.png'))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(os.path.join(ann, 'orphan.png'))
    with pytest.raises(DatasetError) as err:
        build(img_dirs=img, ann_dirs=ann, palette=ISBI_PALETTE)
    msg = str(err.value)
    assert f'1 image(s) in {img} without a mask in {ann}: img_001.png' in msg
    assert f'1 mask(s) in {ann} without an image in {img}: orphan.png' in msg

    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(DatasetError, match=f'image directory {empty} has no images'):
        build(img_dirs=str(empty), ann_dirs=ann, palette=ISBI_PALETTE)
    with pytest.raises(DatasetError, match='image directory /nonexistent does not exist'):
        build(img_dirs='/nonexistent', ann_dirs=ann, palette=ISBI_PALETTE)


def test_unknown_mask_values(tmp_path):
    img, ann = str(tmp_path / 'img'), str(tmp_path / 'ann')
    write_pair(img, ann, 'm', np.array([[0, 1, 7]], np.uint8))
    with pytest.raises(MaskValueError, match=r'm\.png: value\(s\) \[7\] are not a label_id'):
        build(img_dirs=img, ann_dirs=ann, palette=ISBI_PALETTE)[0]
    out = build(img_dirs=img, ann_dirs=ann, palette=ISBI_PALETTE, unknown_label='ignore')[0]
    np.testing.assert_array_equal(out['gt_seg_map'], [[0, 1, 255]])


def test_shared_colour_only_refused_in_colour_masks(tmp_path):
    """Two classes with one colour: id masks load; a colour mask using that colour is
    refused, naming the file and the entries."""
    from mmseg_tao.datasets.transforms.loading import load_tao_mask
    palette = Palette.from_entries([
        dict(seg_class='bg', label_id=0, mapping_class='bg', rgb=[0, 0, 0]),
        dict(seg_class='a', label_id=1, mapping_class='a', rgb=[200, 0, 0]),
        dict(seg_class='b', label_id=2, mapping_class='b', rgb=[200, 0, 0])])
    ids = np.array([[0, 1, 2]], np.uint8)
    Image.fromarray(ids).save(tmp_path / 'ids.png')
    np.testing.assert_array_equal(load_tao_mask(str(tmp_path / 'ids.png'), palette), ids)
    colour = np.zeros((1, 3, 3), np.uint8)
    colour[0, 1] = [200, 0, 0]
    Image.fromarray(colour).save(tmp_path / 'colour.png')
    with pytest.raises(MaskValueError, match=r"colour\.png: colour \[200, 0, 0\] is shared by "
                       r"dataset\.palette\[1\] \('a' -> 'a'\), dataset\.palette\[2\]"):
        load_tao_mask(str(tmp_path / 'colour.png'), palette)
