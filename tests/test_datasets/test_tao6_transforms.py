"""TAO 6 augmentations, pipelines and mask decoding against hand-computed references."""
import numpy as np
import pytest
from mmengine.dataset import Compose
from mmseg.registry import TRANSFORMS
from PIL import Image, ImageEnhance, ImageFilter

import mmseg_tao  # noqa: F401  (registers the transforms)
from mmseg_tao.datasets.transforms import (
    LoadTAO6Annotations,
    TAO6RandomRotate,
    load_tao6_mask,
    tao6_norm_cfg,
    tao6_test_pipeline,
    tao6_train_pipeline,
)

BINARY = [(0, [0, 0, 0]), (1, [1, 1, 1])]  # TAO's binary palette under 'norm'


def coord_sample(h: int, w: int) -> dict:
    """A sample whose image is (row, col, 7) per pixel and mask is row * w + col."""
    rows, cols = np.mgrid[:h, :w]
    img = np.stack([rows, cols, np.full_like(rows, 7)], -1).astype(np.uint8)
    mask = (rows * w + cols).astype(np.uint8)
    return dict(img=img, gt_seg_map=mask, seg_fields=['gt_seg_map'], img_shape=(h, w),
                ori_shape=(h, w))


def build(type_: str, **kwargs):
    return TRANSFORMS.build(dict(type=type_, **kwargs))


def run(transform, sample: dict) -> dict:
    return transform({k: (v.copy() if isinstance(v, np.ndarray) else v)
                      for k, v in sample.items()})


# ------------------------------------------------------------------ flips
@pytest.mark.parametrize('h,v,axes,direction', [(1, 0, (1, ), 'horizontal'),
                                                (0, 1, (0, ), 'vertical'),
                                                (1, 1, (0, 1), 'diagonal')])
def test_flip_prob_one_equals_np_flip(h, v, axes, direction):
    sample = coord_sample(4, 6)
    out = run(build('TAO6RandomFlip', hflip_prob=h, vflip_prob=v), sample)
    np.testing.assert_array_equal(out['img'], np.flip(sample['img'], axes))
    np.testing.assert_array_equal(out['gt_seg_map'], np.flip(sample['gt_seg_map'], axes))
    assert out['flip'] and out['flip_direction'] == direction


def test_flip_prob_zero_is_identity():
    sample = coord_sample(4, 6)
    out = run(build('TAO6RandomFlip', hflip_prob=0, vflip_prob=0), sample)
    np.testing.assert_array_equal(out['img'], sample['img'])
    np.testing.assert_array_equal(out['gt_seg_map'], sample['gt_seg_map'])
    assert out['flip'] is False and out['flip_direction'] is None


def test_flips_are_independent():
    # TAO draws both flips; mmseg's RandomFlip(direction=[h, v]) never does both.
    np.random.seed(0)
    flip = build('TAO6RandomFlip', hflip_prob=0.5, vflip_prob=0.5)
    seen = {run(flip, coord_sample(2, 2))['flip_direction'] for _ in range(64)}
    assert seen == {None, 'horizontal', 'vertical', 'diagonal'}


# ------------------------------------------------------------------ rotation
def test_rotate_90_square_is_counter_clockwise():
    sample = coord_sample(4, 4)
    out = run(build('TAO6RandomRotate', prob=1, angles=[90]), sample)
    # Counter-clockwise: the top-right pixel (0, 3) moves to the top-left corner.
    assert tuple(out['img'][0, 0, :2]) == (0, 3)
    np.testing.assert_array_equal(out['img'], np.rot90(sample['img'], 1))
    np.testing.assert_array_equal(out['gt_seg_map'], np.rot90(sample['gt_seg_map'], 1))
    assert out['tao6_rotate_angle'] == 90


@pytest.mark.parametrize('angle,k', [(180, 2), (270, 3)])
def test_rotate_multiples_of_90(angle, k):
    sample = coord_sample(4, 4)
    out = run(build('TAO6RandomRotate', prob=1, angles=[angle]), sample)
    np.testing.assert_array_equal(out['img'], np.rot90(sample['img'], k))
    np.testing.assert_array_equal(out['gt_seg_map'], np.rot90(sample['gt_seg_map'], k))


def test_rotate_90_non_square_keeps_canvas_like_pillow():
    # 4x6 turned 90 degrees counter-clockwise about its centre on the same 4x6 canvas:
    # the 6x4 result covers columns 1..4 (rows 1..4 of np.rot90), the rest is filled 0.
    sample = coord_sample(4, 6)
    out = run(build('TAO6RandomRotate', prob=1, angles=[90]), sample)
    rot = np.rot90(sample['img'], 1)
    assert out['img'].shape == (4, 6, 3)
    np.testing.assert_array_equal(out['img'][:, 1:5], rot[1:5])
    assert not out['img'][:, [0, 5]].any() and not out['gt_seg_map'][:, [0, 5]].any()
    np.testing.assert_array_equal(out['gt_seg_map'][:, 1:5],
                                  np.rot90(sample['gt_seg_map'], 1)[1:5])


def test_rotate_other_angle_matches_pillow_nearest():
    sample = coord_sample(6, 6)
    out = run(build('TAO6RandomRotate', prob=1, angles=[30]), sample)
    ref = np.asarray(Image.fromarray(sample['gt_seg_map']).rotate(30, Image.NEAREST))
    np.testing.assert_array_equal(out['gt_seg_map'], ref)
    assert set(np.unique(out['gt_seg_map'])) <= set(np.unique(sample['gt_seg_map']))


def test_rotate_prob_zero_is_identity_and_static_rotate():
    sample = coord_sample(4, 4)
    out = run(build('TAO6RandomRotate', prob=0, angles=[90]), sample)
    np.testing.assert_array_equal(out['img'], sample['img'])
    assert 'tao6_rotate_angle' not in out
    np.testing.assert_array_equal(TAO6RandomRotate.rotate(sample['img'], -90, 0),
                                  np.rot90(sample['img'], -1))


# ------------------------------------------------------------------ random resized crop
def test_random_resized_crop_without_resize_is_aligned():
    # Area 64% of 10x10 is an 8x8 box; size 8 means no resampling, so the coordinate
    # image tells where the box is, and the mask must come from the same box.
    sample = coord_sample(10, 10)
    np.random.seed(3)
    for _ in range(5):
        out = run(build('TAO6RandomResizedCrop', size=8, scale=(0.64, 0.64)), sample)
        top, left, h, w = out['tao6_crop_box']
        assert (h, w) == (8, 8) and tuple(out['img'][0, 0, :2]) == (top, left)
        np.testing.assert_array_equal(out['img'], sample['img'][top:top + 8, left:left + 8])
        np.testing.assert_array_equal(out['gt_seg_map'],
                                      sample['gt_seg_map'][top:top + 8, left:left + 8])
        assert out['img_shape'] == (8, 8)


def test_random_resized_crop_resamples_with_pillow():
    sample = coord_sample(10, 10)
    sample['img'] = np.random.RandomState(0).randint(0, 256, (10, 10, 3), np.uint8)
    np.random.seed(1)
    out = run(build('TAO6RandomResizedCrop', size=6), sample)
    top, left, h, w = out['tao6_crop_box']
    assert h == w and 9 <= h <= 10  # side round(10 * sqrt(u)), u in [0.8, 1]
    box = (left, top, left + w, top + h)
    ref_img = Image.fromarray(sample['img']).crop(box).resize((6, 6), Image.BICUBIC)
    ref_seg = Image.fromarray(sample['gt_seg_map']).crop(box).resize((6, 6), Image.NEAREST)
    np.testing.assert_array_equal(out['img'], np.asarray(ref_img))
    np.testing.assert_array_equal(out['gt_seg_map'], np.asarray(ref_seg))


def test_random_resized_crop_side_range_and_fallback():
    np.random.seed(0)
    crop = build('TAO6RandomResizedCrop', size=4)
    sides = {crop.get_box(100, 100)[2] for _ in range(200)}
    assert min(sides) >= 89 and max(sides) == 100  # round(100 * sqrt(0.8)) = 89
    # No draw can fit (areas over 100%): the centred whole square is used.
    assert build('TAO6RandomResizedCrop', size=4, scale=(1.5, 2)).get_box(10, 10) == (0, 0,
                                                                                      10, 10)


# ------------------------------------------------------------------ scale + random crop
def test_scale_random_crop_window_is_aligned():
    sample = coord_sample(10, 10)
    np.random.seed(5)
    offsets = set()
    for _ in range(10):
        out = run(build('TAO6ScaleRandomCrop', crop_size=6, scale_range=(1, 1)), sample)
        top, left = (int(v) for v in out['img'][0, 0, :2])
        offsets.add((top, left))
        np.testing.assert_array_equal(out['img'], sample['img'][top:top + 6, left:left + 6])
        np.testing.assert_array_equal(out['gt_seg_map'],
                                      sample['gt_seg_map'][top:top + 6, left:left + 6])
    assert len(offsets) > 1 and all(0 <= t <= 4 and 0 <= u <= 4 for t, u in offsets)


def test_scale_random_crop_rounds_and_pads_like_tao():
    # 10 * 1.35 = 13.5 rounds (to even) to 14: a 14x14 image in a 20x20 canvas of 0 / 255.
    sample = coord_sample(10, 10)
    sample['img'] = np.random.RandomState(0).randint(1, 256, (10, 10, 3), np.uint8)
    out = run(build('TAO6ScaleRandomCrop', crop_size=20, scale_range=(1.35, 1.35)), sample)
    assert out['img'].shape == (20, 20, 3) and out['gt_seg_map'].shape == (20, 20)
    valid = out['gt_seg_map'] != 255
    assert valid.sum() == 14 * 14
    rows, cols = np.nonzero(valid)
    t, u = rows.min(), cols.min()
    ref = np.asarray(Image.fromarray(sample['gt_seg_map']).resize((14, 14), Image.NEAREST))
    np.testing.assert_array_equal(out['gt_seg_map'][t:t + 14, u:u + 14], ref)
    assert not out['img'][~valid].any()  # image padded with 0 where the mask is 255
    ref = np.asarray(Image.fromarray(sample['img']).resize((14, 14), Image.BICUBIC))
    np.testing.assert_array_equal(out['img'][t:t + 14, u:u + 14], ref)


def test_scale_random_crop_default_output_size():
    np.random.seed(2)
    out = run(build('TAO6ScaleRandomCrop', crop_size=8), coord_sample(8, 8))
    assert out['img'].shape == (8, 8, 3) and out['gt_seg_map'].shape == (8, 8)
    assert 1 <= out['tao6_scale_factor'] < 1.2 and (out['gt_seg_map'] != 255).all()


# ------------------------------------------------------------------ blur
def test_blur_changes_image_not_mask():
    rng = np.random.RandomState(0)
    sample = coord_sample(8, 8)
    sample['img'] = rng.randint(0, 256, (8, 8, 3), np.uint8)
    out = run(build('TAO6RandomBlur', radius_range=(1, 1)), sample)
    ref = Image.fromarray(sample['img']).filter(ImageFilter.GaussianBlur(1))
    np.testing.assert_array_equal(out['img'], np.asarray(ref))
    assert not np.array_equal(out['img'], sample['img'])
    np.testing.assert_array_equal(out['gt_seg_map'], sample['gt_seg_map'])
    same = run(build('TAO6RandomBlur', prob=0, radius_range=(1, 1)), sample)
    np.testing.assert_array_equal(same['img'], sample['img'])


# ------------------------------------------------------------------ colour jitter
def test_color_jitter_prob_zero_is_identity_prob_one_changes_image_only():
    rng = np.random.RandomState(0)
    sample = coord_sample(8, 8)
    sample['img'] = rng.randint(0, 256, (8, 8, 3), np.uint8)
    same = run(build('TAO6ColorJitter', prob=0), sample)
    np.testing.assert_array_equal(same['img'], sample['img'])
    np.random.seed(0)
    out = run(build('TAO6ColorJitter', prob=1), sample)
    assert out['img'].shape == (8, 8, 3) and out['img'].dtype == np.uint8
    assert not np.array_equal(out['img'], sample['img'])
    np.testing.assert_array_equal(out['gt_seg_map'], sample['gt_seg_map'])


def test_color_jitter_brightness_factor():
    sample = coord_sample(4, 4)
    out = run(build('TAO6ColorJitter', brightness=(0.5, 0.5), contrast=0, saturation=0,
                    hue=0), sample)
    ref = ImageEnhance.Brightness(Image.fromarray(sample['img'][..., ::-1].copy()))
    np.testing.assert_array_equal(out['img'], np.asarray(ref.enhance(0.5))[..., ::-1])
    assert np.abs(out['img'].astype(int) - sample['img'] * 0.5).max() <= 1


def test_color_jitter_works_on_rgb_order():
    # Saturation 0 turns the image grey with ITU-R 601 luma: pure blue (BGR 255, 0, 0)
    # is 255 * 0.114 = 29; had BGR been read as RGB it would be 255 * 0.299 = 76.
    sample = coord_sample(2, 2)
    sample['img'] = np.zeros((2, 2, 3), np.uint8)
    sample['img'][..., 0] = 255
    out = run(build('TAO6ColorJitter', brightness=0, contrast=0, saturation=(0, 0), hue=0),
              sample)
    assert (out['img'] == 29).all()


def test_color_jitter_rejects_bad_hue():
    with pytest.raises(ValueError):
        build('TAO6ColorJitter', hue=0.6)


def test_eval_at_input_size_sets_ori_shape():
    sample = coord_sample(4, 6)
    sample['ori_shape'] = (40, 60)
    out = run(build('TAO6EvalAtInputSize'), sample)
    assert out['ori_shape'] == (4, 6) and out['tao6_source_shape'] == (40, 60)


# ------------------------------------------------------------------ pipelines
ALL_STEPS = ['Resize', 'TAO6RandomFlip', 'TAO6RandomRotate', 'TAO6RandomResizedCrop',
             'TAO6ScaleRandomCrop', 'TAO6RandomBlur', 'TAO6ColorJitter', 'PackSegInputs']


def types(pipeline):
    return [t['type'] for t in pipeline]


def test_train_pipeline_defaults_in_tao_order():
    for aug in (None, {}):
        pipeline = tao6_train_pipeline(aug, 16)
        assert types(pipeline) == ALL_STEPS
    resize, flip, rotate, crop, scale_crop, blur, color, _ = pipeline
    assert resize == dict(type='Resize', scale=(16, 16), keep_ratio=False,
                          interpolation='bicubic', backend='pillow')
    assert (flip['hflip_prob'], flip['vflip_prob']) == (0.5, 0.5)
    assert rotate['prob'] == 0.5 and rotate['angles'] == [90, 180, 270]
    assert crop['size'] == 16 and crop['scale'] == (0.8, 1.2)
    assert scale_crop['crop_size'] == 16 and scale_crop['scale_range'] == (1.0, 1.2)
    assert blur['prob'] == 1.0
    assert color['brightness'] == color['hue'] == 0.3 and color['prob'] == 1.0


@pytest.mark.parametrize('aug,missing', [
    (dict(random_flip=dict(enable=False)), 'TAO6RandomFlip'),
    (dict(random_rotate=dict(enable=False)), 'TAO6RandomRotate'),
    (dict(with_random_crop=False), 'TAO6RandomResizedCrop'),
    (dict(with_scale_random_crop=dict(enable=False)), 'TAO6ScaleRandomCrop'),
    (dict(with_random_blur=False), 'TAO6RandomBlur'),
    (dict(random_color=dict(enable=False)), 'TAO6ColorJitter'),
    (dict(random_color=None), 'TAO6ColorJitter'),
])
def test_train_pipeline_honours_enable_flags(aug, missing):
    assert types(tao6_train_pipeline(aug, 8)) == [t for t in ALL_STEPS if t != missing]


def test_train_pipeline_reads_values_and_fills_defaults():
    aug = dict(random_flip=dict(hflip_probability=0.2, vflip_probability=0.7),
               random_rotate=dict(rotate_probability=1, angle_list=[90, 180, 270, 45]),
               random_color=dict(brightness=0.1, enable=True),
               with_scale_random_crop=dict(enable=True, scale_range=[0.9, 1.1]))
    p = {t['type']: t for t in tao6_train_pipeline(aug, 8)}
    assert (p['TAO6RandomFlip']['hflip_prob'], p['TAO6RandomFlip']['vflip_prob']) == (0.2, 0.7)
    assert p['TAO6RandomRotate']['angles'] == [90, 180, 270]  # TAO draws from the first 3
    assert p['TAO6ColorJitter']['brightness'] == 0.1 and p['TAO6ColorJitter']['hue'] == 0.3
    assert p['TAO6ScaleRandomCrop']['scale_range'] == (0.9, 1.1)


def write_sample(tmp_path, h=12, w=10):
    rng = np.random.RandomState(0)
    img_path, mask_path = str(tmp_path / 'img.png'), str(tmp_path / 'mask.png')
    Image.fromarray(rng.randint(0, 256, (h, w, 3), np.uint8)).save(img_path)
    mask = np.zeros((h, w), np.uint8)
    mask[:, w // 2:] = 255
    Image.fromarray(mask).save(mask_path)
    return dict(img_path=img_path, seg_map_path=mask_path, reduce_zero_label=False,
                seg_fields=[])


LOADERS = [dict(type='LoadImageFromFile', imdecode_backend='pillow'),
           dict(type='LoadTAO6Annotations', colors=BINARY, label_transform='norm')]


def compose(cfgs):
    return Compose([TRANSFORMS.build(cfg) for cfg in cfgs])


def test_train_pipeline_builds_and_runs(tmp_path):
    np.random.seed(0)
    pipeline = compose(LOADERS + tao6_train_pipeline(None, 8))
    for _ in range(3):
        out = pipeline(write_sample(tmp_path))
        assert tuple(out['inputs'].shape) == (3, 8, 8)
        seg = out['data_samples'].gt_sem_seg.data
        assert tuple(seg.shape) == (1, 8, 8)
        assert set(seg.unique().tolist()) <= {0, 1, 255}


def test_test_pipeline_resizes_image_and_mask(tmp_path):
    pipeline = tao6_test_pipeline(8)
    assert types(pipeline) == ['Resize', 'TAO6EvalAtInputSize', 'PackSegInputs']
    out = compose(LOADERS + pipeline)(write_sample(tmp_path))
    assert tuple(out['inputs'].shape) == (3, 8, 8)
    meta = out['data_samples'].metainfo
    assert meta['ori_shape'] == (8, 8) and meta['img_shape'] == (8, 8)
    seg = out['data_samples'].gt_sem_seg.data[0].numpy()
    np.testing.assert_array_equal(seg, np.repeat([[0] * 4 + [1] * 4], 8, axis=0))


def test_norm_cfg():
    assert tao6_norm_cfg(None) == ([127.5] * 3, [127.5] * 3)
    mean, std = tao6_norm_cfg(dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]))
    np.testing.assert_allclose(mean, [123.675, 116.28, 103.53])
    np.testing.assert_allclose(std, [58.395, 57.12, 57.375])


# ------------------------------------------------------------------ mask decoding
def save(tmp_path, arr, name='m.png', mode=None):
    path = str(tmp_path / name)
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr, mode)
    img.save(path)
    return path


def test_norm_binary_mask_floor_divides(tmp_path):
    mask = np.array([[0, 255, 128], [254, 255, 0]], np.uint8)
    path = save(tmp_path, mask)
    np.testing.assert_array_equal(load_tao6_mask(path, BINARY, 'norm'),
                                  [[0, 1, 0], [0, 1, 0]])  # 128 // 255 == 254 // 255 == 0
    # Without 'norm' 255 matches no palette colour and becomes 0.
    assert not load_tao6_mask(path, BINARY, None).any()
    # Swapped binary palette: white is id 0, black id 1.
    np.testing.assert_array_equal(load_tao6_mask(path, [(0, [1, 1, 1]), (1, [0, 0, 0])], 'norm'),
                                  [[1, 0, 1], [1, 0, 1]])


def test_rgb_palette_and_unmatched_colour(tmp_path):
    palette = list(enumerate([[0, 0, 0], [255, 0, 0], [0, 255, 0]]))
    mask = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                     [[0, 0, 0], [255, 0, 0], [255, 0, 1]]], np.uint8)
    path = save(tmp_path, mask)
    np.testing.assert_array_equal(load_tao6_mask(path, palette),
                                  [[1, 2, 0], [0, 1, 0]])
    # RGBA and palette-mode PNGs are read as their colours.
    rgba = np.concatenate([mask, np.full(mask.shape[:2] + (1, ), 9, np.uint8)], -1)
    np.testing.assert_array_equal(load_tao6_mask(save(tmp_path, rgba, 'a.png'), palette),
                                  [[1, 2, 0], [0, 1, 0]])
    p_img = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), 'P')
    p_img.putpalette([0, 0, 0, 0, 255, 0, 255, 0, 0])
    p_img.save(str(tmp_path / 'p.png'))
    np.testing.assert_array_equal(load_tao6_mask(str(tmp_path / 'p.png'), palette),
                                  [[0, 2], [1, 2]])


def test_single_value_palette_and_duplicates(tmp_path):
    path = save(tmp_path, np.array([[0, 3, 7]], np.uint8))
    np.testing.assert_array_equal(
        load_tao6_mask(path, list(enumerate([[0], [7], [3]]))), [[0, 2, 1]])
    # A colour listed twice belongs to its last train id (TAO's colour -> id dict).
    np.testing.assert_array_equal(
        load_tao6_mask(path, list(enumerate([[0], [7], [7]]))), [[0, 0, 2]])


def test_label_id_255_is_the_ignore_index(tmp_path):
    """TAO 6's multi-class example lists 'unknown' (black) with label_id 255: its pixels
    reach the loss as 255, which cross-entropy ignores."""
    path = save(tmp_path, np.array([[[0, 0, 0], [0, 255, 255], [9, 9, 9]]], np.uint8))
    colors = [(0, [0, 255, 255]), (255, [0, 0, 0])]
    np.testing.assert_array_equal(load_tao6_mask(path, colors), [[255, 0, 0]])


def test_load_tao6_mask_rejects_bad_arguments(tmp_path):
    path = save(tmp_path, np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match='label_transform'):
        load_tao6_mask(path, BINARY, 'normalize')
    with pytest.raises(ValueError, match='empty'):
        load_tao6_mask(path, [], None)


def test_load_tao6_annotations_transform(tmp_path):
    path = save(tmp_path, np.array([[0, 255]], np.uint8))
    loader = LoadTAO6Annotations(colors=BINARY, label_transform='norm')
    out = loader(dict(seg_map_path=path, seg_fields=[]))
    np.testing.assert_array_equal(out['gt_seg_map'], [[0, 1]])
    assert out['gt_seg_map'].dtype == np.uint8 and out['seg_fields'] == ['gt_seg_map']
    assert loader(dict(seg_map_path=None)) == dict(seg_map_path=None)
    assert isinstance(TRANSFORMS.build(dict(type='LoadTAO6Annotations', colors=BINARY)),
                      LoadTAO6Annotations)
