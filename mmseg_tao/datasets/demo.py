"""Small, realistic synthetic segmentation datasets with ready TAO specs.

Two kinds of data, each written in TAO's folder layout::

    OUT_DIR/<kind>/images/{train,val}/NAME.png
    OUT_DIR/<kind>/masks/{train,val}/NAME.png
    OUT_DIR/<kind>/spec.yaml          # TAO SegFormer experiment spec (written last)

``membranes``
    EM-like grayscale images in the style of the ISBI 2012 challenge: cells of a warped
    Voronoi tessellation separated by thin dark membranes (2-4 px, varying), textured cell
    interiors with dark organelle blobs as distractors, then blur and noise. Masks follow
    TAO's ISBI convention: 0 = membrane (``foreground``, label_id 0), 255 = cell interior
    (``background``, label_id 1); TAO binarises them with ``value / 255 > 0.5`` when
    ``input_type: grayscale``.

``shapes``
    RGB images with four classes: textured background (0), ellipses (1), rotated boxes (2)
    and triangles (3), with class-specific but overlapping colours and textures and
    occlusions, then blur and noise. Masks are single-channel class-id PNGs (0..3).

Output is deterministic: the same arguments give byte-identical files. Each image draws
from its own random stream (seeded by ``seed``, kind, split and index), so changing the
number of images does not change the images two runs share. Every file is written whole
or not at all (:func:`mmseg_tao.utils.atomic_path`), the spec last, so an interrupted run
never leaves a spec that points at a half-written dataset.

The command line is ``mmseg-tao demo-data`` (:mod:`mmseg_tao.cli.demo_data`);
``mmseg-tao prepare-isbi`` uses the ``membranes`` generator at ISBI's size.
"""
import os
import os.path as osp
import re
import time
from typing import Callable, Dict, Sequence, Tuple

import numpy as np
import yaml
from PIL import Image, ImageDraw
from scipy import ndimage

from mmseg_tao.utils import atomic_path, atomic_write

KINDS = ('membranes', 'shapes')
SPLITS = ('train', 'val')
KIND_IDS = {kind: i for i, kind in enumerate(KINDS)}
SPLIT_IDS = {split: i for i, split in enumerate(SPLITS)}

MEMBRANE_VALUE, CELL_VALUE = 0, 255
MEMBRANES_PALETTE = [
    dict(seg_class='foreground', rgb=[0, 0, 0], label_id=0, mapping_class='foreground'),
    dict(seg_class='background', rgb=[255, 255, 255], label_id=1, mapping_class='background'),
]
SHAPE_CLASSES = ('background', 'ellipse', 'box', 'triangle')
SHAPE_COLOURS = ([0, 0, 0], [220, 20, 60], [0, 160, 80], [30, 90, 230])
SHAPES_PALETTE = [dict(seg_class=name, rgb=list(rgb), label_id=i, mapping_class=name)
                  for i, (name, rgb) in enumerate(zip(SHAPE_CLASSES, SHAPE_COLOURS))]
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]

# Typical cell diameter in pixels (kept in pixels, so membranes stay 2-4 px at any size).
CELL_DIAMETER = (24.0, 40.0)
MIN_CELLS = 4
# Mean RGB of each shape class; per-shape colours scatter widely around them (overlap).
SHAPE_MEAN_RGB = {1: (185.0, 95.0, 80.0), 2: (95.0, 165.0, 100.0), 3: (90.0, 105.0, 180.0)}
SHAPE_RGB_SPREAD = 45.0

Generator = Callable[[np.random.Generator, int], Tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- helpers
def smooth_noise(rng: np.random.Generator, shape: Tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to zero mean and unit standard deviation.

    Wide kernels (``sigma >= 6``) filter a coarser grid and upsample it bilinearly: the
    same texture statistics at a fraction of the cost.
    """
    factor = int(sigma // 3) if sigma >= 6 else 1
    if factor == 1:
        field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode='wrap')
    else:
        coarse = tuple(-(-n // factor) + 1 for n in shape)
        field = ndimage.gaussian_filter(rng.standard_normal(coarse), sigma / factor,
                                        mode='wrap')
        field = ndimage.zoom(field, factor, order=1, mode='nearest')[:shape[0], :shape[1]]
    return (field - field.mean()) / (field.std() + 1e-8)


def finish_image(rng: np.random.Generator, img: np.ndarray, blur: Tuple[float, float],
                 noise: Tuple[float, float]) -> np.ndarray:
    """Blur the spatial axes, add Gaussian noise and convert to uint8."""
    sigma = rng.uniform(*blur)
    sigmas = (sigma, sigma) + (0,) * (img.ndim - 2)
    img = ndimage.gaussian_filter(img, sigmas)
    img = img + rng.normal(0.0, rng.uniform(*noise), img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def polygon_mask(points: np.ndarray, size: int) -> np.ndarray:
    """Boolean mask of a filled polygon (``points``: N x 2 array of x, y)."""
    canvas = Image.new('L', (size, size), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in points], fill=1)
    return np.asarray(canvas, dtype=bool)


def rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """Rotate N x 2 points about the origin by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


# --------------------------------------------------------------------------- membranes
def voronoi_labels(rng: np.random.Generator, size: int) -> np.ndarray:
    """Cell ids of a Voronoi tessellation of random seeds, with wavy (warped) borders."""
    diameter = rng.uniform(*CELL_DIAMETER)
    n_cells = max(MIN_CELLS, int(round(size * size / diameter ** 2)))
    seeds = np.zeros((size, size), dtype=np.int32)
    ys, xs = rng.integers(0, size, n_cells), rng.integers(0, size, n_cells)
    seeds[ys, xs] = np.arange(1, n_cells + 1)
    _, (iy, ix) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[iy, ix]
    # Domain warp: membranes of real tissue are curved, not straight Voronoi edges.
    amp = rng.uniform(2.0, 5.0)
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float64)
    dy = amp * smooth_noise(rng, (size, size), 10.0)
    dx = amp * smooth_noise(rng, (size, size), 10.0)
    return ndimage.map_coordinates(labels, [grid_y + dy, grid_x + dx], order=0,
                                   mode='nearest')


def membrane_mask(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Pixels within a varying distance of a cell border: membranes 2-4 px wide."""
    border = np.zeros(labels.shape, dtype=bool)
    horizontal = labels[:, :-1] != labels[:, 1:]
    vertical = labels[:-1, :] != labels[1:, :]
    # Both pixels of each differing pair: a 2-px line centred on the true border.
    border[:, :-1] |= horizontal
    border[:, 1:] |= horizontal
    border[:-1, :] |= vertical
    border[1:, :] |= vertical
    dist = ndimage.distance_transform_edt(~border)
    # Width w in [2, 4] varies smoothly along the membranes. The true border lies half a
    # pixel inside the line, so a pixel is within w / 2 of it when dist + 0.5 <= w / 2
    # (on the pixel grid: 2 px where w < 3, 4 px where w >= 3, between on diagonals).
    width = np.clip(3.0 + smooth_noise(rng, labels.shape, 12.0), 2.0, 4.0)
    return dist + 0.5 <= width / 2.0


def add_organelles(rng: np.random.Generator, img: np.ndarray, size: int) -> None:
    """Darken a few small blobs (mitochondria / vesicles), the membranes' look-alikes."""
    n_blobs = rng.poisson(size * size / 2500.0)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(n_blobs):
        cy, cx = rng.uniform(0, size, 2)
        a, b = rng.uniform(1.5, 7.0), rng.uniform(1.5, 3.0)
        theta = rng.uniform(0, np.pi)
        y0, y1 = int(max(cy - 8, 0)), int(min(cy + 9, size))
        x0, x1 = int(max(cx - 8, 0)), int(min(cx + 9, size))
        dy, dx = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        inside = (u / a) ** 2 + (v / b) ** 2 <= 1.0
        img[y0:y1, x0:x1][inside] = rng.uniform(50.0, 110.0)


def make_membrane_sample(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """One EM-like grayscale image and its 0 (membrane) / 255 (cell) mask."""
    labels = voronoi_labels(rng, size)
    membrane = membrane_mask(rng, labels)
    n_cells = int(labels.max()) + 1
    cell_level = rng.uniform(145.0, 205.0, n_cells)
    img = cell_level[labels]
    img += 12.0 * smooth_noise(rng, (size, size), 6.0)   # cytoplasm texture, coarse
    img += 6.0 * smooth_noise(rng, (size, size), 1.5)    # and fine
    img += 15.0 * smooth_noise(rng, (size, size), 40.0)  # uneven illumination
    add_organelles(rng, img, size)
    membrane_level = rng.uniform(45.0, 85.0) + 10.0 * smooth_noise(rng, (size, size), 4.0)
    img[membrane] = membrane_level[membrane]
    image = finish_image(rng, img, blur=(0.6, 1.2), noise=(5.0, 12.0))
    mask = np.where(membrane, MEMBRANE_VALUE, CELL_VALUE).astype(np.uint8)
    return image, mask


# --------------------------------------------------------------------------- shapes
def shape_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured RGB background: random base colour, linear gradient, blotchy noise."""
    base = rng.uniform(70.0, 190.0, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    ramp = (xx * np.cos(angle) + yy * np.sin(angle))[..., None]
    gradient = ramp * rng.uniform(-60.0, 60.0, 3)
    texture = 18.0 * smooth_noise(rng, (size, size), 5.0)[..., None]
    return base + gradient + texture + rng.normal(0.0, 6.0, (size, size, 1))


def shape_polygon(rng: np.random.Generator, cls: int, size: int) -> np.ndarray:
    """Vertices (x, y) of a random ellipse (1), rotated box (2) or triangle (3)."""
    centre = rng.uniform(0.1, 0.9, 2) * size
    scale = rng.uniform(0.08, 0.22) * size
    if cls == 1:
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        a, b = scale, scale * rng.uniform(0.45, 1.0)
        pts = np.stack([a * np.cos(t), b * np.sin(t)], axis=1)
    elif cls == 2:
        w, h = scale, scale * rng.uniform(0.4, 1.0)
        pts = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
    else:
        angles = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.4, 0.4, 3)
        radii = scale * rng.uniform(0.8, 1.3, 3)
        pts = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    return rotate(pts, rng.uniform(0, 2 * np.pi)) + centre


def shape_fill(rng: np.random.Generator, cls: int, shape: Tuple[int, int]) -> np.ndarray:
    """Class-specific texture: ellipses blotchy, boxes striped, triangles grainy."""
    colour = np.asarray(SHAPE_MEAN_RGB[cls]) + rng.normal(0.0, SHAPE_RGB_SPREAD, 3)
    if cls == 1:
        tex = 20.0 * smooth_noise(rng, shape, 3.0)
    elif cls == 2:
        yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
        angle, period = rng.uniform(0, np.pi), rng.uniform(5.0, 10.0)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period
        tex = 18.0 * np.sin(phase + rng.uniform(0, 2 * np.pi))
    else:
        tex = 22.0 * smooth_noise(rng, shape, 0.7)
    shade = rng.uniform(0.8, 1.1)
    return colour * shade + tex[..., None]


def paint_shape(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray,
                cls: int) -> None:
    """Draw one random shape of class ``cls`` over ``img`` and ``mask`` (occluding)."""
    size = mask.shape[0]
    region = polygon_mask(shape_polygon(rng, cls, size), size)
    ys, xs = np.nonzero(region)
    if ys.size == 0:
        return
    box = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    inside = region[box]
    img[box][inside] = shape_fill(rng, cls, inside.shape)[inside]
    mask[box][inside] = cls


def make_shapes_sample(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """One RGB image with ellipses, boxes and triangles, and its class-id mask."""
    img = shape_background(rng, size)
    mask = np.zeros((size, size), dtype=np.uint8)
    classes = [1, 2, 3] + list(rng.integers(1, 4, rng.integers(1, 6)))
    for cls in rng.permutation(classes):  # later shapes occlude earlier ones
        paint_shape(rng, img, mask, int(cls))
    image = finish_image(rng, img, blur=(0.5, 1.1), noise=(4.0, 10.0))
    return image, mask


GENERATORS: Dict[str, Generator] = {'membranes': make_membrane_sample,
                                    'shapes': make_shapes_sample}
NUM_CLASSES = {'membranes': 2, 'shapes': len(SHAPE_CLASSES)}


# --------------------------------------------------------------------------- writing
def sample_rng(seed: int, kind: str, split: str, index: int) -> np.random.Generator:
    """An independent random stream per (seed, kind, split, image index)."""
    return np.random.default_rng([seed, KIND_IDS[kind], SPLIT_IDS[split], index])


def save_png(array: np.ndarray, path: str) -> None:
    """Write a PNG whole or not at all (not flushed to disk one by one: a crash may lose
    the newest images, never leave half of one)."""
    with atomic_path(path, durable=False) as tmp:
        Image.fromarray(array).save(tmp, format='PNG')


def sample_name(split: str, index: int) -> str:
    """File stem of image ``index`` of a split (shared by the image and its mask)."""
    return f'{split}_{index:04d}'


def remove_stale(dirs: Sequence[str], split: str, count: int) -> int:
    """Delete what earlier runs of this tool left: images beyond ``count`` (a larger run)
    and temporary files (an interrupted run). Other files are left alone."""
    image = re.compile(rf'^{split}_(\d+)\.png$')
    # atomic_path's temporary names, and the '.tmp' ones of earlier versions of this tool
    temporary = re.compile(rf'^\.{split}_\d+\.png\.(tmp|.*\.partial)$')
    removed = 0
    for d in dirs:
        for name in os.listdir(d):
            m = image.match(name)
            if temporary.match(name) or (m and int(m.group(1)) >= count):
                os.remove(osp.join(d, name))
                removed += 1
    return removed


def class_counts(mask: np.ndarray, kind: str) -> np.ndarray:
    """Pixels per training id (membranes: 0 = membrane, 1 = cell)."""
    ids = (mask > 127).astype(np.uint8) if kind == 'membranes' else mask
    return np.bincount(ids.ravel(), minlength=NUM_CLASSES[kind])


def split_dirs(root: str, split: str) -> Tuple[str, str]:
    """(images, masks) directories of a split under a kind's root."""
    return osp.join(root, 'images', split), osp.join(root, 'masks', split)


def write_split(root: str, kind: str, split: str, count: int, size: int,
                seed: int) -> np.ndarray:
    """Generate and write one split, removing what a larger or interrupted earlier run left.

    Args:
        root: The kind's dataset root (``images/`` and ``masks/`` go under it).
        kind: ``'membranes'`` or ``'shapes'``.
        split: ``'train'`` or ``'val'``.
        count: Number of images.
        size: Width and height of every image.
        seed: Base random seed.

    Returns:
        The pixel count of every training id over the split's masks.
    """
    img_dir, ann_dir = split_dirs(root, split)
    for d in (img_dir, ann_dir):
        os.makedirs(d, exist_ok=True)
    remove_stale((img_dir, ann_dir), split, count)
    counts = np.zeros(NUM_CLASSES[kind], dtype=np.int64)
    make = GENERATORS[kind]
    for i in range(count):
        image, mask = make(sample_rng(seed, kind, split, i), size)
        name = sample_name(split, i) + '.png'
        save_png(image, osp.join(img_dir, name))
        save_png(mask, osp.join(ann_dir, name))
        counts += class_counts(mask, kind)
    return counts


def build_spec(root: str, kind: str, size: int) -> dict:
    """The TAO SegFormer experiment spec for a generated dataset (absolute paths)."""
    results = osp.join(root, 'results')
    train_img, train_ann = split_dirs(root, 'train')
    val_img, val_ann = split_dirs(root, 'val')
    checkpoint = osp.join(results, 'train', 'iter_300.pth')
    if kind == 'membranes':
        input_type, palette = 'grayscale', MEMBRANES_PALETTE
        norm = dict(mean=[127.5] * 3, std=[127.5] * 3)
    else:
        input_type, palette = 'rgb', SHAPES_PALETTE
        norm = dict(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
    return {
        'results_dir': results,
        'model': {'input_height': size, 'input_width': size,
                  'backbone': {'type': 'mit_b0'},
                  'decode_head': {'decoder_params': {'embed_dim': 256}}},
        'dataset': {
            'input_type': input_type,
            'img_norm_cfg': norm,
            'train_dataset': {'img_dir': [train_img], 'ann_dir': [train_ann]},
            'val_dataset': {'img_dir': val_img, 'ann_dir': val_ann},
            'test_dataset': {'img_dir': val_img, 'ann_dir': val_ann},
            'palette': [dict(e) for e in palette],
            'repeat_data_times': 1,
            'batch_size': 4,
            'workers_per_gpu': 2,
        },
        'train': {'max_iters': 300, 'checkpoint_interval': 100, 'logging_interval': 20,
                  'validate': True, 'validation_interval': 100,
                  'trainer': {'sf_optim': {'lr': 0.0006},
                              'lr_config': {'warmup_iters': 20}}},
        'evaluate': {'checkpoint': checkpoint},
        'inference': {'checkpoint': checkpoint},
        'export': {'checkpoint': checkpoint,
                   'onnx_file': osp.join(results, 'export', 'segformer.onnx'),
                   'input_height': size, 'input_width': size},
    }


def class_names(kind: str) -> Sequence[str]:
    """Display names of a kind's training ids."""
    if kind == 'membranes':
        return ('foreground (membrane)', 'background (cell)')
    return SHAPE_CLASSES


def format_shares(counts: np.ndarray, kind: str) -> str:
    """``'name 12.3%, ...'`` for pixel counts per training id."""
    total = max(int(counts.sum()), 1)
    return ', '.join(f'{name} {100.0 * c / total:.1f}%'
                     for name, c in zip(class_names(kind), counts))


def make_kind(out_dir: str, kind: str, num: Dict[str, int], size: int, seed: int) -> str:
    """Write one kind's dataset, then its spec, printing counts and class shares.

    Args:
        out_dir: Output directory; the dataset goes to ``out_dir/<kind>``.
        kind: ``'membranes'`` or ``'shapes'``.
        num: Images per split, ``{'train': N, 'val': M}``.
        size: Width and height of every image.
        seed: Base random seed.

    Returns:
        The path of the written spec (``out_dir/<kind>/spec.yaml``).
    """
    root = osp.abspath(osp.join(out_dir, kind))
    spec_path = osp.join(root, 'spec.yaml')
    os.makedirs(root, exist_ok=True)
    if osp.exists(spec_path):  # no spec may point at a dataset being rewritten
        os.remove(spec_path)
    start = time.perf_counter()
    for split in SPLITS:
        counts = write_split(root, kind, split, num[split], size, seed)
        img_dir, ann_dir = split_dirs(root, split)
        print(f'[{kind}/{split}] {num[split]} images {size}x{size} -> {img_dir}, '
              f'masks -> {ann_dir}')
        print(f'[{kind}/{split}] class pixel shares: {format_shares(counts, kind)}')
    spec = build_spec(root, kind, size)
    atomic_write(spec_path, yaml.safe_dump(spec, sort_keys=False, default_flow_style=False))
    print(f'[{kind}] spec -> {spec_path} ({time.perf_counter() - start:.1f} s)')
    return spec_path
