"""A picture of a training run's curves (loss, learning rate, mIoU) beside its status file."""
import glob
import json
import logging
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ...utils import atomic_path

#: Keys that come from validation rows: drawn as points (there are few of them).
VAL_KEYS = ('mIoU', 'mAcc', 'aAcc')
Series = Tuple[List[int], List[float]]
#: mmengine names a run's log directory by its start time (``Runner.timestamp``).
_TIMESTAMP = re.compile(r'\d{8}_\d{6}')


def read_scalars(paths: Sequence[str]) -> List[dict]:
    """The rows of mmengine's ``scalars.json`` files, oldest file first, as one run.

    Each file is one ``Runner`` in the same work dir (``<work_dir>/<timestamp>/vis_data/
    scalars.json``; runners started within the same second append to one file). A run
    resumed from a checkpoint logs again from the step after the checkpoint's iteration:
    the first row of a file, and a row whose step is lower than the one before it, drop
    the earlier rows from that step on (the iterations the resumed run repeats), so a run
    started from scratch (step 1) replaces everything before it. A validation row has the
    step of the iteration it follows. Lines that are not JSON objects (the half line of a
    killed run) and rows of step 0 (a validation run outside training writes those) are
    skipped.

    Args:
        paths: ``scalars.json`` files, in the order the runs were made.

    Returns:
        list[dict]: The rows, each with ``step``, in increasing step order.
    """
    rows: List[dict] = []
    for path in paths:
        first = True  # a new file is a new runner: it repeats from its first step on
        with open(path, encoding='utf-8') as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                step = row.get('step') if isinstance(row, dict) else None
                if not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0:
                    continue
                if first or (rows and step < rows[-1]['step']):
                    rows = [r for r in rows if r['step'] < step]
                rows.append(row)
                first = False
    return rows


def series(rows: Sequence[dict], key: str) -> Series:
    """``(steps, values)`` of the rows that have a number under ``key``."""
    steps, values = [], []
    for row in rows:
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            steps.append(row['step'])
            values.append(float(value))
    return steps, values


def draw_curves(curves: Dict[str, Series], path: Optional[str] = None,
                panel_size: Tuple[float, float] = (8.0, 2.6), dpi: int = 100):
    """Draw one panel per curve, stacked, against the iteration.

    The figure is made without pyplot (a ``Figure`` on an Agg canvas), so it neither needs
    a display nor changes the backend of the process that trains.

    Args:
        curves: Panel title (the scalar's key) -> ``(iterations, values)``, in panel
            order. Keys in :data:`VAL_KEYS` are drawn with a marker on each point.
        path: Where to write the PNG (atomically); not written when None.
        panel_size: Width and height of one panel in inches; the image is
            ``panel_size[0] * dpi`` wide and ``len(curves) * panel_size[1] * dpi`` high.
        dpi: Pixels per inch.

    Returns:
        matplotlib.figure.Figure: The figure; ``fig.axes[i].lines[0]`` holds curve i.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel_size[0], panel_size[1] * len(curves)), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(curves), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (key, (steps, values)) in zip(axes, curves.items()):
        if key in VAL_KEYS:
            ax.plot(steps, values, marker='o', color='tab:green')
            best = max(range(len(values)), key=values.__getitem__)
            ax.set_title(f'{key} (best {values[best]:.4g} at iteration {steps[best]})')
        else:
            ax.plot(steps, values, linewidth=1.0)
            ax.set_title(f'{key} (last {values[-1]:.4g})')
        ax.set_ylabel(key)
        ax.set_xlabel('iteration')
        ax.grid(True, alpha=0.3)
        # Every panel shows its iterations: they are read one at a time.
        ax.tick_params(labelbottom=True)
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format='png', dpi=dpi)
    return fig


@HOOKS.register_module()
class TrainingCurvesHook(Hook):
    """Draw the run's loss, learning rate and mIoU against the iteration into
    ``<work_dir>/curves.png`` (beside TAO's ``status.json``) when training ends.

    The values are read from the ``scalars.json`` files that mmengine's
    ``LocalVisBackend`` writes (``<work_dir>/<timestamp>/vis_data/``; those of earlier
    runs in the work dir are joined as :func:`read_scalars` says, so a resumed run shows
    its whole history); without one (no ``LocalVisBackend`` in the visualizer), from the
    runner's message hub, one point per iteration. Keys without values (mIoU of a run
    without validation) get no panel. A missing matplotlib or missing values give a
    warning in the run's log, and so does any error while drawing: the picture never
    stops a training run.

    Args:
        filename (str): The image's path, relative to the work dir unless absolute.
            Default: ``'curves.png'``.
        keys (Sequence[str]): The scalars to draw, one panel each, in this order.
            Default: ``('loss', 'lr', 'mIoU')``.
        scalars_file (str): The file name of ``LocalVisBackend``'s scalars (its
            ``scalar_save_file``). Default: ``'scalars.json'``.
        draw_after_val (bool): Also redraw after each validation during training, so a
            long run shows its curves before it ends. Default: True.
    """

    priority = 'VERY_LOW'  # after LoggerHook has written the iteration's scalars

    def __init__(self, filename: str = 'curves.png',
                 keys: Sequence[str] = ('loss', 'lr', 'mIoU'),
                 scalars_file: str = 'scalars.json', draw_after_val: bool = True):
        self.filename = filename
        self.keys = tuple(keys)
        self.scalars_file = scalars_file
        self.draw_after_val = draw_after_val
        self._training = False
        # (iteration, metrics) of this run's validations, for the message-hub fallback.
        self._val_rows: List[dict] = []

    def before_train(self, runner) -> None:
        self._training = True
        self._val_rows = []

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if not self._training:
            return
        self._val_rows.append(dict(step=runner.iter, **{
            k: float(v) for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) or getattr(v, 'ndim', None) == 0}))
        if self.draw_after_val:
            self.draw(runner, final=False)

    def after_train(self, runner) -> None:
        self._training = False
        self.draw(runner)

    def scalar_files(self, runner) -> List[str]:
        """The ``scalars.json`` files of this run and the earlier runs in its work dir,
        oldest first (mmengine names each run's directory by its timestamp)."""
        pattern = osp.join(glob.escape(runner.work_dir), '*', 'vis_data', self.scalars_file)
        current = osp.basename(osp.normpath(runner.log_dir))
        files = []
        for path in sorted(glob.glob(pattern)):
            run = osp.basename(osp.dirname(osp.dirname(path)))
            if run == current or (_TIMESTAMP.fullmatch(run) and run < current):
                files.append(path)
        return files

    def hub_rows(self, runner) -> List[dict]:
        """Rows made from the message hub: ``train/<key>`` holds one value per iteration
        up to the current one; validation values are those this hook saw."""
        rows: Dict[int, dict] = {}
        for key in self.keys:
            buffer = runner.message_hub.log_scalars.get(f'train/{key}')
            if buffer is None:
                continue
            values = buffer.data[0]
            first = runner.iter - len(values) + 1
            for i, value in enumerate(values):
                rows.setdefault(first + i, dict(step=first + i))[key] = float(value)
        return [rows[s] for s in sorted(rows)] + self._val_rows

    def draw(self, runner, final: bool = True) -> Optional[str]:
        """Draw the curves into the image file (main process only).

        Args:
            runner: The runner.
            final: Warn about what is missing (at the end of training); a redraw
                during training stays quiet.

        Returns:
            str | None: The image's path, or None when nothing was drawn.
        """
        if not is_main_process():
            return None
        path = self.filename if osp.isabs(self.filename) else osp.join(
            runner.work_dir, self.filename)

        def warn(message: str) -> None:
            if final:
                print_log(f'TrainingCurvesHook: {message}; {path} is not written.',
                          logger=runner.logger, level=logging.WARNING)

        try:
            import matplotlib  # noqa: F401
        except ImportError:
            warn('matplotlib is not installed (pip install matplotlib)')
            return None
        try:
            files = self.scalar_files(runner)
            rows = read_scalars(files) if files else self.hub_rows(runner)
            curves = {key: series(rows, key) for key in self.keys}
            curves = {key: s for key, s in curves.items() if s[0]}
            if not curves:
                source = ', '.join(files) if files else 'the message hub'
                warn(f'no values of {", ".join(self.keys)} in {source}')
                return None
            draw_curves(curves, path)
        except Exception as error:  # a picture must not fail a finished training
            warn(f'drawing the curves failed ({type(error).__name__}: {error})')
            return None
        return path
