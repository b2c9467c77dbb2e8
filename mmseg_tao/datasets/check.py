"""Read every image and mask of a dataset once and report what would break training."""
import collections
from dataclasses import dataclass, field
from typing import Callable, Counter, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .pairing import misnamed_pairs
from .palette import IGNORE_INDEX, Palette
from .transforms.loading import decode_tao_mask, read_mask

EXIF_ORIENTATION = 0x0112
# How viewers show a file with each EXIF orientation (1: as stored).
ORIENTATIONS = {2: 'mirrored left-right', 3: 'rotated 180 degrees', 4: 'mirrored top-bottom',
                5: 'transposed', 6: 'rotated 90 degrees clockwise', 7: 'transversed',
                8: 'rotated 90 degrees counter-clockwise'}
MAX_NAMED_PAIRS = 20


@dataclass
class SplitReport:
    """What :func:`check_pairs` found.

    Attributes:
        pairs: Number of image / mask pairs.
        problems: One message per problem, naming the file.
        class_pixels: Training id -> labelled pixels.
        class_images: Training id -> images containing the class.
        ignored_pixels: Pixels at the ignore index.
        sizes: (width, height) -> images of that size.
        warnings: Legal data that probably does not mean what it says, naming the file.
        id_values: Stored value -> pixels, over the masks read as class ids by TAO 5's rule
            (before binarisation and the palette).
        id_value_files: Stored value -> the first mask holding it.
        id_value_masks: Stored value -> masks holding it.
    """
    pairs: int = 0
    problems: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    class_pixels: Counter = field(default_factory=collections.Counter)
    class_images: Counter = field(default_factory=collections.Counter)
    ignored_pixels: int = 0
    sizes: Counter = field(default_factory=collections.Counter)
    id_values: Counter = field(default_factory=collections.Counter)
    id_value_files: Dict[int, str] = field(default_factory=dict)
    id_value_masks: Counter = field(default_factory=collections.Counter)
    # Problems about the whole split, recomputed by each check_pairs call on the report.
    split_problems: List[str] = field(default_factory=list, repr=False)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag of an opened file (1 when absent), without decoding the
    pixels of a PNG (Pillow decodes a PNG to look for an ``eXIf`` chunk after the data)."""
    if img.format == 'PNG' and 'exif' not in img.info:
        return 1
    try:
        return int(img.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block is no orientation
        return 1


def _read_image(path: str) -> Tuple[Tuple[int, int], int]:
    """(width, height) as stored, and the EXIF orientation."""
    with Image.open(path) as img:
        img.load()  # decodes everything: truncated files fail here
        return img.size, _orientation(img)


def _mask_orientation(path: str) -> int:
    try:
        with Image.open(path) as img:
            return _orientation(img)
    except Exception:  # noqa: BLE001 - unreadable masks are reported by decoding
        return 1


def _orientation_warning(path: str, orientation: int) -> Optional[str]:
    if orientation not in ORIENTATIONS:
        return None
    return (f'{path}: EXIF orientation {orientation} (viewers show it '
            f'{ORIENTATIONS[orientation]}) is not applied: read unrotated, as TAO does; its '
            'mask must follow the stored pixels (to train on the upright view, rotate the '
            'pixels of the file and drop the tag, e.g. with PIL.ImageOps.exif_transpose)')


def check_pairs(pairs: Sequence[Tuple[str, Optional[str]]], palette: Palette,
                input_type: str = 'rgb', unknown_label: str = 'error',
                report: Optional[SplitReport] = None,
                decode: Optional[Callable[[str], np.ndarray]] = None) -> SplitReport:
    """Decode each image and mask; collect sizes, class statistics, problems and warnings.

    Problems found: unreadable or truncated images and masks, image / mask size mismatch,
    (with ``unknown_label='error'``) mask values or colours outside the palette, and a
    palette class that vanishes into the ignore index (:func:`vanishing_classes`).
    Warnings: pairs whose file names do not correspond (TAO 6 pairs by sorted order, see
    :func:`~mmseg_tao.datasets.pairing.misnamed_pairs`), files with an EXIF orientation
    tag (read unrotated, as TAO does), grayscale masks without values above 127.
    ``decode`` (mask path -> training ids) replaces TAO 5's mask rule, e.g. TAO 6's
    (:func:`~mmseg_tao.datasets.transforms.tao6_loading.load_tao6_mask`).

    Several calls may fill one ``report`` (one per directory pair of a split); the
    split-wide problems are recomputed by each.
    """
    report = report or SplitReport()
    misnamed = misnamed_pairs(pairs)
    report.warnings += [f'{img} <-> {seg}: paired by sorted order as TAO does; names do not '
                        'correspond' for img, seg in misnamed[:MAX_NAMED_PAIRS]]
    if len(misnamed) > MAX_NAMED_PAIRS:
        report.warnings.append(f'{len(misnamed) - MAX_NAMED_PAIRS} more pair(s) whose names '
                               'do not correspond')
    for img_path, seg_path in pairs:
        report.pairs += 1
        try:
            size, orientation = _read_image(img_path)
            report.sizes[size] += 1
            warning = _orientation_warning(img_path, orientation)
            if warning:
                report.warnings.append(warning)
        except Exception as err:  # noqa: BLE001 - any decoder error is a bad file
            report.problems.append(f'{img_path}: unreadable or truncated image ({err})')
            size = None
        if seg_path is None:
            continue
        values = None
        try:
            if decode:
                mask = decode(seg_path)
            else:
                mask, values = decode_tao_mask(read_mask(seg_path), seg_path, palette,
                                               input_type, unknown_label)
        except Exception as err:  # noqa: BLE001
            text = str(err)
            report.problems.append(text if text.startswith(seg_path) else
                                   f'{seg_path}: unreadable or truncated mask ({err})')
            continue
        warning = _orientation_warning(seg_path, _mask_orientation(seg_path))
        if warning:
            report.warnings.append(warning)
        if values is not None:
            hist = np.bincount(values.ravel(), minlength=256)
            for v in np.flatnonzero(hist).tolist():
                report.id_values[v] += int(hist[v])
                report.id_value_files.setdefault(v, seg_path)
                report.id_value_masks[v] += 1
            if input_type == 'grayscale':
                _check_binary_values(seg_path, hist, report)
        if size is not None and (mask.shape[1], mask.shape[0]) != size:
            report.problems.append(
                f'{seg_path}: mask is {mask.shape[1]}x{mask.shape[0]} but image {img_path} '
                f'is {size[0]}x{size[1]}')
        counts = np.bincount(mask.ravel(), minlength=256)
        report.ignored_pixels += int(counts[IGNORE_INDEX])
        for t in range(palette.num_classes):
            if counts[t]:
                report.class_pixels[t] += int(counts[t])
                report.class_images[t] += 1
    report.problems = [p for p in report.problems if p not in report.split_problems]
    report.split_problems = (vanishing_classes(report, palette)
                             if input_type == 'rgb' and decode is None else [])
    report.problems += report.split_problems
    return report


def vanishing_classes(report: SplitReport, palette: Palette) -> List[str]:
    """Palette classes that binary (0/255) masks read with ``input_type: rgb`` lose to the
    ignore index; a problem message for each.

    The rule, over the masks of a split read as class ids (TAO 5's rule, ``input_type``
    rgb): a value is a ``label_id``, 255 is the ignore index, and other values are errors
    or (``unknown_label: ignore``) the ignore index. ``input_type: grayscale`` instead
    reads a value v as ``label_id`` 1 when v / 255 > 0.5, else 0 (TAO 5's rule for binary
    masks). The class of ``label_id`` L (0 or 1) is reported when

    * it has no pixels in the split,
    * some pixels became the ignore index holding values that the grayscale rule makes L,
    * and the masks hold no ``label_id`` other than 0 (what did get a class is 0): binary
      masks, not a split where the class is merely absent beside a void label.

    The message names the class, the values, how many masks hold them and one of these,
    the share of all mask pixels that became the ignore index through them, and the fix
    (``dataset.input_type: grayscale``).
    """
    if not report.id_values:
        return []
    lut = palette.id_lut(IGNORE_INDEX)
    ignored = {v: n for v, n in report.id_values.items() if lut[v] == IGNORE_INDEX}
    if any(v != 0 for v in report.id_values if v not in ignored):
        return []
    total = sum(report.class_pixels.values()) + report.ignored_pixels
    problems = []
    for label in (0, 1):
        t = palette.label_map.get(label)
        values = sorted(v for v in ignored if int(v / 255 > 0.5) == label)
        if t is None or not values or report.class_pixels.get(t):
            continue
        pixels = sum(ignored[v] for v in values)
        masks = max(report.id_value_masks[v] for v in values)
        shown = ', '.join(str(v) for v in values[:5]) + (' ...' if len(values) > 5 else '')
        name = palette.classes[t]
        problems.append(
            f'class {name!r} (label_id {label}) has no pixels, while value(s) {shown} in '
            f'{masks} mask(s) (e.g. {report.id_value_files[values[0]]}), '
            f'{100.0 * pixels / max(total, 1):.1f}% of the mask pixels, became the ignore '
            "index: dataset.input_type is 'rgb', which reads each mask value as a label_id "
            'and 255 as ignored; these look like binary 0/255 masks, which input_type '
            'grayscale reads as TAO 5 does (value / 255 > 0.5 is label_id 1, else 0), '
            f'making them {name!r}. Fix: set dataset.input_type: grayscale')
    return problems


def _check_binary_values(seg_path: str, hist: np.ndarray, report: SplitReport) -> None:
    """TAO binarises grayscale masks as value / 255 > 0.5: a mask whose foreground is
    stored as small values (0/1 masks) becomes all background."""
    values = np.flatnonzero(hist)
    if values.size and values.max() > 0 and values.max() <= 127:
        shown = ', '.join(str(int(v)) for v in values[:10])
        report.warnings.append(
            f'{seg_path}: values {{{shown}}} and none above 127: input_type grayscale '
            'binarises masks as value / 255 > 0.5 (TAO), so this mask is all background; '
            'store the foreground as 255, or use input_type rgb with label_id values')


def format_report(name: str, report: SplitReport, classes: Sequence[str]) -> str:
    """Human-readable report of one split."""
    lines = [f'[{name}] {report.pairs} image/mask pairs']
    if report.sizes:
        common = ', '.join(f'{w}x{h} ({n})' for (w, h), n in report.sizes.most_common(3))
        areas = sorted(report.sizes, key=lambda s: s[0] * s[1])
        lines.append(f'  image sizes: {len(report.sizes)} distinct; most common {common}; '
                     f'smallest {areas[0][0]}x{areas[0][1]}, largest {areas[-1][0]}x{areas[-1][1]}')
    total = sum(report.class_pixels.values()) + report.ignored_pixels
    if total:
        lines.append(f'  {"id":>3}  {"class":<24}{"pixels %":>10}{"images":>9}')
        for t, cls in enumerate(classes):
            share = 100.0 * report.class_pixels.get(t, 0) / total
            images = report.class_images.get(t, 0)
            lines.append(f'  {t:>3}  {cls[:24]:<24}{share:>10.2f}{images:>9}')
        ignored = 100.0 * report.ignored_pixels / total
        lines.append(f'  {"":>3}  {"(ignore 255)":<24}{ignored:>10.2f}')
        absent = [c for t, c in enumerate(classes) if not report.class_pixels.get(t)]
        if absent:
            lines.append(f'  note: no pixels of {", ".join(absent)}')
    if report.warnings:
        lines.append(f'  {len(report.warnings)} warning(s):')
        lines += [f'    - {w}' for w in report.warnings]
    if report.problems:
        lines.append(f'  {len(report.problems)} problem(s):')
        lines += [f'    - {p}' for p in report.problems]
    else:
        lines.append('  no problems')
    return '\n'.join(lines)


def summarise(reports: Dict[str, SplitReport]) -> int:
    """Total number of problems."""
    return sum(len(r.problems) for r in reports.values())
