"""TAO's ``status.json``: the line writer, the task wrapper and the two TAO forms.

Every TAO task appends JSON lines to ``<task results dir>/status.json``. The facts below are
from NVIDIA's sources (paths inside ``nvidia_tao_pytorch/``; TAO 5.5 is
NVIDIA/tao_pytorch_backend dc07b02, TAO 6/7 NVIDIA-TAO/tao-pytorch 7.0.1 d99ff77; the key
lists are recorded in ``tests/data/tao_status/``):

- ``core/loggers/api_logging.py`` ``BaseLogger.write``: a line is the data fields, then
  ``date`` (``M/D/YYYY``, no zero padding), ``time`` (``H:M:S``, no zero padding),
  ``status`` (STARTED, RUNNING, SUCCESS, FAILURE, SKIPPED), ``verbosity`` (``INFO``, also
  for failures), ``message`` (only when given), then ``categorical``, ``graphical`` and
  ``kpi`` when non-empty. ``kpi`` and ``graphical`` are attributes of the one status logger:
  once set they are repeated on every later line until set again.
- ``core/decorators/workflow.py`` ``monitor_status(name, mode)`` wraps every task: STARTED
  ``"Starting {name} {mode}."``, then after the task RUNNING ``"{Mode} finished
  successfully."`` (TAO never writes SUCCESS), or FAILURE with the error. ``name`` is
  ``Segformer`` in TAO 5.5; TAO 6/7 spells it ``SegFormer`` for train, inference and
  quantize, ``Segformer`` for evaluate and export.

mmseg-tao writes the same lines (a NaN score, which TAO writes as ``NaN``, is ``null``:
valid JSON) and adds one: a final ``SUCCESS`` line (``"{Task} succeeded."``) after TAO's
RUNNING "finished successfully" line, so a reader of the last line can tell a finished task
from a running one. A failure is always written (TAO 7 writes none for exception types it does
not list), then the error propagates.
"""
import datetime
import json
import os
import os.path as osp
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np

STARTED, RUNNING, SUCCESS, FAILURE, SKIPPED = 'STARTED', 'RUNNING', 'SUCCESS', 'FAILURE', \
    'SKIPPED'
STATUS_FILE = 'status.json'

# ``monitor_status(name=...)`` of each task script, by TAO form (5: TAO 5.5, 6: TAO 6/7).
TASK_NAMES: Dict[int, Dict[str, str]] = {
    5: dict(train='Segformer', evaluate='Segformer', inference='Segformer',
            export='Segformer'),
    6: dict(train='SegFormer', evaluate='Segformer', inference='SegFormer',
            export='Segformer', quantize='SegFormer'),
}

# The active task's logger (TAO keeps one global status logger too): a training hook that
# runs inside :func:`task_status` writes through it instead of opening its own.
_ACTIVE: List['StatusLogger'] = []


def tao_date(now: datetime.datetime) -> str:
    """``M/D/YYYY`` without zero padding, as TAO's ``BaseLogger.date``."""
    return f'{now.month}/{now.day}/{now.year}'


def tao_time(now: datetime.datetime) -> str:
    """``H:M:S`` without zero padding, as TAO's ``BaseLogger.time``."""
    return f'{now.hour}:{now.minute}:{now.second}'


def _finite(value: Any) -> Any:
    """NaN and infinities as null: ``json.dumps`` would write ``NaN``, which is not JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, 'item') and getattr(obj, 'ndim', None) == 0:  # a 0-d tensor
        return obj.item()
    raise TypeError(f'{type(obj).__name__} is not JSON serializable')


class StatusLogger:
    """Append TAO status lines to ``path``; ``kpi`` and ``graphical`` persist between
    lines, as on TAO's status logger.

    Args:
        path (str): The ``status.json`` file (its folder is created).
        enabled (bool, optional): Write at all; default: only in the main process.
    """

    def __init__(self, path: str, enabled: Optional[bool] = None):
        if enabled is None:
            from mmengine.dist import is_main_process
            enabled = is_main_process()
        self.path = osp.abspath(path)
        self.enabled = enabled
        self.kpi: Dict[str, Any] = {}
        self.graphical: Dict[str, Any] = {}
        self.categorical: Dict[str, Any] = {}

    def write(self, data: Optional[Mapping[str, Any]] = None, status: str = RUNNING,
              message: Optional[str] = None, verbosity: str = 'INFO',
              kpi: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Append one line and return it.

        Args:
            data: The line's own fields, first in the line.
            status: STARTED, RUNNING, SUCCESS, FAILURE or SKIPPED.
            message: The ``message`` field (left out when empty, as in TAO).
            verbosity: TAO's verbosity name; TAO writes ``INFO`` even for failures.
            kpi: This line's ``kpi`` instead of the persistent :attr:`kpi`.
        """
        now = datetime.datetime.now()
        row = dict(data or {})
        row.update(date=tao_date(now), time=tao_time(now), status=status,
                   verbosity=verbosity)
        if message:
            row['message'] = message
        kpi = self.kpi if kpi is None else kpi
        for key, value in (('categorical', self.categorical), ('graphical', self.graphical),
                           ('kpi', kpi)):
            if value:
                row[key] = dict(value)
        if self.enabled:
            os.makedirs(osp.dirname(self.path), exist_ok=True)
            with open(self.path, 'a', encoding='utf-8') as f:
                f.write(json.dumps(_finite(row), default=_json_default) + '\n')
        return row


def failure_message(error: BaseException, task: str, form: int) -> str:
    """The FAILURE message TAO's ``monitor_status`` writes for ``error``.

    TAO 5.5: ``"{Mode} was interrupted"`` for KeyboardInterrupt / SystemError, else
    ``str(error)``. TAO 7.0.1 prefixes the error by its kind (interruption, not implemented,
    parameter validation, file system); other errors, for which TAO 7 writes nothing, are
    given as ``"{type}: {error}"``.
    """
    mode = task.capitalize()
    interrupted = isinstance(error, (KeyboardInterrupt, SystemError))
    if form == 5:
        return f'{mode} was interrupted' if interrupted else (
            str(error) or type(error).__name__)
    if interrupted:
        return f'User/System interruption: {mode} was interrupted'
    for kinds, prefix in ((NotImplementedError, 'Feature not implemented'),
                          ((ValueError, TypeError), 'Parameter validation error'),
                          (OSError, 'File system error')):
        if isinstance(error, kinds):
            return f'{prefix}: {error}'
    return f'{type(error).__name__}: {error}'


def start_lines(logger: StatusLogger, task: str, form: int) -> None:
    """TAO's first line of a task: STARTED ``"Starting {name} {task}."``."""
    logger.write(status=STARTED, message=f'Starting {TASK_NAMES[form][task]} {task}.')


def finish_lines(logger: StatusLogger, task: str) -> None:
    """TAO's last line of a task that worked (RUNNING ``"{Task} finished successfully."``)
    and mmseg-tao's SUCCESS line after it."""
    logger.write(status=RUNNING, message=f'{task.capitalize()} finished successfully.')
    logger.write(status=SUCCESS, message=f'{task.capitalize()} succeeded.')


def active_logger() -> Optional[StatusLogger]:
    """The logger of the innermost running :func:`task_status`, or None."""
    return _ACTIVE[-1] if _ACTIVE else None


@contextmanager
def task_status(results_dir: str, task: str, form: int,
                enabled: Optional[bool] = None) -> Iterator[StatusLogger]:
    """TAO's ``monitor_status`` for one task: STARTED before the body, the finish lines
    after it, FAILURE (then the error is raised on) when it raises.

    Args:
        results_dir (str): The task's results dir; the lines go to its ``status.json``.
        task (str): ``train``, ``evaluate``, ``inference``, ``export`` or ``quantize``.
        form (int): 5 for TAO 5.5's lines, 6 for TAO 6/7's (see :func:`spec_form`).
        enabled (bool, optional): See :class:`StatusLogger`.

    Yields:
        StatusLogger: For the task's own lines (metrics, progress).
    """
    logger = StatusLogger(osp.join(results_dir, STATUS_FILE), enabled)
    start_lines(logger, task, form)
    _ACTIVE.append(logger)
    try:
        yield logger
    except BaseException as error:
        logger.write(status=FAILURE, message=failure_message(error, task, form))
        raise
    finally:
        _ACTIVE.remove(logger)
    finish_lines(logger, task)


def spec_form(spec: Any) -> int:
    """6 for a spec read from TAO 6/7's schema (it keeps the TAO 6 spec as ``tao6``),
    else 5."""
    return 6 if getattr(spec, 'tao6', None) is not None else 5


def config_form(cfg: Mapping[str, Any]) -> int:
    """The TAO form of a generated config: its ``tao_version`` when set, else 6 when the
    recorded spec (``tao_spec``, or the YAML file it names) has TAO 6/7's keys
    (``dataset.segment``, ``train.num_epochs``), else 5."""
    version = cfg.get('tao_version')
    if version is not None:
        return 6 if int(version) >= 6 else 5
    spec = cfg.get('tao_spec') or {}
    if isinstance(spec, str):  # the spec file beside a config from tools/spec2cfg.py
        import yaml
        try:
            with open(spec, encoding='utf-8') as f:
                spec = yaml.safe_load(f) or {}
        except OSError:
            spec = {}
    dataset, train = spec.get('dataset') or {}, spec.get('train') or {}
    return 6 if 'segment' in dataset or 'num_epochs' in train else 5


def tao5_time_per_iter(seconds: float) -> str:
    """TAO 5.5's ``time_per_iter``: the logged seconds (4 decimals) as ``00:00:0<s>``
    below one second, else ``HH:MM:SS``."""
    seconds = float(f'{seconds:.4f}')
    if seconds < 1:
        return f'00:00:0{seconds}'
    return time.strftime('%H:%M:%S', time.gmtime(seconds))


def tao6_scores(metric: Any = None, metrics: Optional[Mapping[str, float]] = None
                ) -> Dict[str, float]:
    """TAO 6's scores as fractions: ``acc`` (all-pixel accuracy), ``miou``, ``mf1``,
    ``mprecision``, ``mrecall`` (means over classes, NaN classes left out).

    From ``metric.tao_scores`` (:class:`~mmseg_tao.evaluation.TAOIoUMetric`, unrounded)
    when there, else from the percent ``metrics`` (``aAcc``, ``mIoU``, ``mFscore``,
    ``mPrecision``, ``mRecall``) divided by 100.
    """
    scores = getattr(metric, 'tao_scores', None)
    if scores:
        return dict(scores)
    names = dict(acc='aAcc', miou='mIoU', mf1='mFscore', mprecision='mPrecision',
                 mrecall='mRecall')
    metrics = metrics or {}
    return {k: float(metrics[v]) / 100 for k, v in names.items() if v in metrics}
