"""Which mask belongs to which image: TAO 5's pairing by name, TAO 6/7's by sorted order.

TAO 5 (mmseg's ``CustomDataset``) pairs an image and a mask whose paths relative to their
directories are equal up to the suffix, recursively (:func:`pair_files`). TAO 6/7
(``cv/segformer/dataloader/dataset.py``) lists the image and the mask folder of a split
without descending into subfolders, sorts each list by full file name and zips them, with no
suffix filter (:func:`pair_sorted`): ``x.png, x-1.png`` go with ``x_mask.png, x-1_mask.png``
because ``'-' < '.'`` in both lists. Such a pairing ignores names, so
:func:`misnamed_pairs` names the pairs whose file names do not correspond.
"""
import collections
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

# TAO 6's listing rule, shared with the spec's epoch count (torch-free, in spec/).
from ..spec.listing import list_sorted
from ..spec.listing import suffixes as _suffixes

IMG_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
MASK_SUFFIXES = ('.png', '.bmp', '.tif', '.tiff')

Pairs = List[Tuple[str, Optional[str]]]


def scan_dir(root: str, suffixes: Tuple[str, ...]) -> Dict[str, str]:
    """Files under ``root`` (recursively) with one of ``suffixes``, keyed by their path
    relative to ``root`` without suffix."""
    found: Dict[str, str] = {}
    for dirpath, _, files in os.walk(root, followlinks=True):
        for name in files:
            stem, ext = osp.splitext(name)
            if ext.lower() in suffixes:
                rel = osp.relpath(osp.join(dirpath, stem), root)
                found.setdefault(rel, osp.join(dirpath, name))
    return found


def _missing_dirs(img_dir: str, ann_dir: Optional[str]) -> List[str]:
    return [f'{what} directory {d} does not exist'
            for d, what in ((img_dir, 'image'), (ann_dir, 'mask'))
            if d is not None and not osp.isdir(d)]


def pair_files(img_dir: str, ann_dir: Optional[str], img_suffix: Optional[str] = None,
               seg_map_suffix: Optional[str] = None) -> Tuple[Pairs, List[str]]:
    """Pair images with masks by relative path and stem (TAO 5, mmseg).

    Returns:
        (pairs, problems): sorted (image, mask) pairs and a message per problem
        (missing or empty directory, images without a mask, masks without an image).
    """
    problems = _missing_dirs(img_dir, ann_dir)
    if problems:
        return [], problems
    images = scan_dir(img_dir, _suffixes(img_suffix, IMG_SUFFIXES))
    if not images:
        problems.append(f'image directory {img_dir} has no images '
                        f'({", ".join(_suffixes(img_suffix, IMG_SUFFIXES))})')
    if ann_dir is None:
        return [(images[k], None) for k in sorted(images)], problems
    masks = scan_dir(ann_dir, _suffixes(seg_map_suffix, MASK_SUFFIXES))
    if not masks and images:
        problems.append(f'mask directory {ann_dir} has no masks')
    no_mask = sorted(set(images) - set(masks))
    no_image = sorted(set(masks) - set(images))
    if masks and no_mask:
        problems.append(f'{len(no_mask)} image(s) in {img_dir} without a mask in {ann_dir}: '
                        + ', '.join(osp.relpath(images[k], img_dir) for k in no_mask[:20])
                        + (' ...' if len(no_mask) > 20 else ''))
    if images and no_image:
        problems.append(f'{len(no_image)} mask(s) in {ann_dir} without an image in {img_dir}: '
                        + ', '.join(osp.relpath(masks[k], ann_dir) for k in no_image[:20])
                        + (' ...' if len(no_image) > 20 else ''))
    pairs = [(images[k], masks[k]) for k in sorted(set(images) & set(masks))]
    return pairs, problems


def pair_sorted(img_dir: str, ann_dir: Optional[str], img_suffix: Optional[str] = None,
                seg_map_suffix: Optional[str] = None) -> Tuple[Pairs, List[str]]:
    """Pair the n-th image with the n-th mask as TAO 6/7 does (:func:`list_sorted`).

    Subfolders are listed like files, as TAO lists them, and are a problem each (TAO fails
    when it opens one); other files that are no image are left to the decoding check.

    Returns:
        (pairs, problems) as :func:`pair_files`; unequal counts are a problem (TAO asserts
        equal counts) and give no pairs.
    """
    problems = _missing_dirs(img_dir, ann_dir)
    if problems:
        return [], problems
    images = list_sorted(img_dir, img_suffix)
    if not images:
        problems.append(f'image directory {img_dir} has no images'
                        + (f' ({_suffixes(img_suffix, ())[0]})' if img_suffix else ''))
    masks = [] if ann_dir is None else list_sorted(ann_dir, seg_map_suffix)
    problems += [f'{p}: a folder in a TAO 6 split folder, which TAO 6 lists and pairs like '
                 'a file; move it out' for p in images + masks if osp.isdir(p)]
    if ann_dir is None:
        return [(p, None) for p in images], problems
    if len(masks) != len(images):
        problems.append(f'{len(images)} image(s) in {img_dir} but {len(masks)} '
                        f'mask(s) in {ann_dir}; TAO 6 pairs them by sorted order, so the '
                        'counts must be equal')
        return [], problems
    return list(zip(images, masks)), problems


def _stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def name_change(image: str, mask: str) -> Tuple[str, str]:
    """What differs between the stems of an image and a mask file: both stems without their
    longest common prefix and then their longest common suffix (``x`` / ``x_mask`` ->
    ``('', '_mask')``; ``a_leftImg8bit`` / ``a_gtFine_labelIds`` -> ``('leftImg8bit',
    'gtFine_labelIds')``; equal stems -> ``('', '')``)."""
    a, b = _stem(image), _stem(mask)
    p = len(osp.commonprefix([a, b]))
    s = 0
    while s < min(len(a), len(b)) - p and a[-1 - s] == b[-1 - s]:
        s += 1
    return a[p:len(a) - s], b[p:len(b) - s]


def _affix_at_separator(change: Tuple[str, str], image: str, mask: str) -> bool:
    """One stem is the other plus text that meets it at a non-alphanumeric character
    (``x`` -> ``x_mask``, ``0001`` -> ``label-0001``)."""
    a, b = change
    if a and b:
        return False
    extra = a or b
    if _stem(mask).startswith(_stem(image)) or _stem(image).startswith(_stem(mask)):
        return not extra[0].isalnum()  # appended: the shared part comes first
    return not extra[-1].isalnum()  # prepended


def misnamed_pairs(pairs: Sequence[Tuple[str, Optional[str]]]) -> List[Tuple[str, str]]:
    """The (image, mask) pairs whose file names do not correspond.

    The rule: take each pair's :func:`name_change`. A pair corresponds when its stems are
    equal, or its change is the dataset's naming convention: the change shared by more than
    half of the pairs, and by at least two. Where no change is that common, a pair
    corresponds when one stem is the other plus text meeting it at a non-alphanumeric
    character (``x.png`` / ``x_mask.png``, ``0001.jpg`` / ``label_0001.png``). So
    ``x.png <-> y_mask.png`` never corresponds, and ``x.png <-> x1_mask.png`` not next to
    ``x1.png <-> x_mask.png`` (what sorting gives for ``'1' < '_'`` but ``'.' < '1'``).
    Pairs by TAO 5's rule (equal stems) always correspond.
    """
    pairs = [(img, seg) for img, seg in pairs if seg is not None]
    changes = [name_change(img, seg) for img, seg in pairs]
    common = collections.Counter(c for c in changes if c != ('', ''))
    convention = None
    if common:
        change, count = common.most_common(1)[0]
        if count >= 2 and count * 2 > len(pairs):
            convention = change
    bad = []
    for (img, seg), change in zip(pairs, changes):
        if change == ('', '') or change == convention:
            continue
        if convention is None and _affix_at_separator(change, img, seg):
            continue
        bad.append((img, seg))
    return bad
