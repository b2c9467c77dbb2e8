"""Read every image and mask of a dataset once and report what would break training."""
import collections
from dataclasses import dataclass, field
from typing import Callable, Counter, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .palette import IGNORE_INDEX, Palette
from .transforms.loading import load_tao_mask


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
    """
    pairs: int = 0
    problems: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    class_pixels: Counter = field(default_factory=collections.Counter)
    class_images: Counter = field(default_factory=collections.Counter)
    ignored_pixels: int = 0
    sizes: Counter = field(default_factory=collections.Counter)


def _image_size(path: str) -> Tuple[int, int]:
    with Image.open(path) as img:
        img.load()  # decodes everything: truncated files fail here
        return img.size


def check_pairs(pairs: Sequence[Tuple[str, Optional[str]]], palette: Palette,
                input_type: str = 'rgb', unknown_label: str = 'error',
                report: Optional[SplitReport] = None,
                decode: Optional[Callable[[str], np.ndarray]] = None) -> SplitReport:
    """Decode each image and mask; collect sizes, class statistics and problems.

    Problems found: unreadable or truncated images and masks, image / mask size mismatch,
    and (with ``unknown_label='error'``) mask values or colours outside the palette.
    ``decode`` (mask path -> training ids) replaces TAO 5's mask rule, e.g. TAO 6's
    (:func:`~mmseg_tao.datasets.transforms.tao6_loading.load_tao6_mask`).
    """
    report = report or SplitReport()
    for img_path, seg_path in pairs:
        report.pairs += 1
        try:
            size = _image_size(img_path)
            report.sizes[size] += 1
        except Exception as err:  # noqa: BLE001 - any decoder error is a bad file
            report.problems.append(f'{img_path}: unreadable or truncated image ({err})')
            size = None
        if seg_path is None:
            continue
        try:
            mask = decode(seg_path) if decode else load_tao_mask(
                seg_path, palette, input_type, unknown_label)
        except Exception as err:  # noqa: BLE001
            text = str(err)
            report.problems.append(text if text.startswith(seg_path) else
                                   f'{seg_path}: unreadable or truncated mask ({err})')
            continue
        if input_type == 'grayscale' and decode is None:
            _check_binary_values(seg_path, report)
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
    return report


def _check_binary_values(seg_path: str, report: SplitReport) -> None:
    """TAO binarises grayscale masks as value / 255 > 0.5: a mask whose foreground is
    stored as small values (0/1 masks) becomes all background."""
    with Image.open(seg_path) as img:
        values = np.flatnonzero(np.bincount(np.asarray(img).ravel(), minlength=256))
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
