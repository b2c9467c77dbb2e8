"""The ``evaluate`` task: TAO's per-class and summary tables, and the same as JSON."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.runner import Runner

from ..engine.status import StatusLogger, spec_form, tao6_scores, task_status
from ..models.utils import check_checkpoint_fits
from ..spec.translate import results_dir
from .deployed_model import (
    CHECKPOINT,
    ONNX,
    QUANTIZED,
    model_kind,
    prediction_notes,
    restore_quantized,
    size_key,
    use_onnx_model,
)
from .experiment import fast_prediction, prepare, single_process, task_config


def format_table(headers: List[str], rows: List[List[str]]) -> str:
    """An ASCII table like TAO's (+----+ borders)."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'
    fmt = '| ' + ' | '.join(f'{{:<{w}}}' for w in widths) + ' |'
    out = [line, fmt.format(*headers), line]
    out += [fmt.format(*map(str, r)) for r in rows]
    out.append(line)
    return '\n'.join(out)


def _num(x: float) -> str:
    return 'nan' if x != x else f'{x:.2f}'


# TAO 6/7 also reports F1, precision and recall (MeanIoUMeter): extra columns in its form.
TAO6_CLASS_COLUMNS = ('F1', 'Precision', 'Recall')
TAO6_SUMMARY_COLUMNS = ('mF1', 'mPrecision', 'mRecall')
_ROW_KEYS = dict(F1='Fscore')  # per_class rows of TAOIoUMetric name F1 mmseg's way


def evaluation_tables(per_class: List[Dict], summary: Dict[str, float]) -> str:
    """TAO's two tables: Class | IoU | Acc, then Scope | mIoU | mAcc | aAcc; with F1,
    Precision, Recall (mF1, mPrecision, mRecall) when ``summary`` has ``mF1``."""
    extra = 'mF1' in summary
    cols = ['IoU', 'Acc', *(TAO6_CLASS_COLUMNS if extra else ())]
    classes = format_table(['Class', *cols],
                           [[r['Class'], *(_num(r.get(_ROW_KEYS.get(c, c), float('nan')))
                                           for c in cols)] for r in per_class])
    scols = ['mIoU', 'mAcc', 'aAcc', *(TAO6_SUMMARY_COLUMNS if extra else ())]
    summ = format_table(['Scope', *scols], [['global', *(_num(summary[c]) for c in scols)]])
    return f'{classes}\nSummary:\n\n{summ}'


def evaluate(spec_path: str, overrides: Sequence[str] = (), launcher: str = 'none',
             tao_version: Optional[int] = None) -> Dict:
    """Evaluate ``evaluate.checkpoint`` on ``dataset.test_dataset`` with
    ``evaluate.batch_size`` images per pass in ``evaluate.precision``; print the tables
    and write ``results.json`` to the evaluate results dir. Returns the results.

    The checkpoint may also be a deployed model (:mod:`.deployed_model`): an ONNX file
    (TAO 5's or TAO 6's export, Q/DQ INT8 ones too), run with ONNX Runtime in the same test
    loop and evaluator, or a quantized model of the ``quantize`` task; ``precision`` is
    then the model's own.

    ``status.json`` in the results dir gets TAO's lines: a TAO 6/7 spec RUNNING "Test
    metrics generated." with ``kpi`` ``test_acc``, ``test_miou``, ``test_mf1``,
    ``test_mprecision``, ``test_mrecall`` (fractions), and F1 / precision / recall join the
    tables and ``results.json``; a TAO 5 spec the row of TAO 5.5's status hook (``mode:
    "test"``, ``"Mean IOU"``, ``mAcc`` in %, the same as ``kpi``)."""
    spec = prepare(spec_path, overrides, 'evaluate', tao_version)
    form = spec_form(spec)
    with task_status(results_dir(spec, 'evaluate'), 'evaluate', form) as status:
        return _evaluate(spec, launcher, form, status)


def _evaluate(spec, launcher: str, form: int, status: StatusLogger) -> Dict:
    plan = single_process(spec, 'evaluate')
    cfg = task_config(spec, 'evaluate', launcher, plan)
    checkpoint = spec.evaluate.checkpoint
    kind = model_kind(checkpoint)
    prediction_notes('evaluate', kind, spec.evaluate.precision)
    if kind == ONNX:
        use_onnx_model(cfg, checkpoint, plan.device, size_key(spec))
    elif kind == QUANTIZED:
        cfg.load_from = None  # restored below, not loaded as a state dict
    runner = Runner.from_cfg(cfg)
    if kind == CHECKPOINT:
        check_checkpoint_fits(runner.model, checkpoint)
        fast_prediction(runner.model, spec.evaluate.precision)
    elif kind == QUANTIZED:
        runner.model = restore_quantized(runner.model, checkpoint,
                                         getattr(spec, 'quantize', None))
    metrics = runner.test()
    metric = runner.test_evaluator.metrics[0]
    summary = {k: round(float(metrics[k]), 2) for k in ('mIoU', 'mAcc', 'aAcc')}
    result = dict(checkpoint=spec.evaluate.checkpoint,
                  num_images=len(runner.test_dataloader.dataset),
                  per_class=metric.per_class, summary=summary)
    if form == 6:
        kpi = {f'test_{k}': v for k, v in tao6_scores(metric, metrics).items()}
        summary.update({k: round(kpi[f'test_{k.lower()}'] * 100, 2)
                        for k in TAO6_SUMMARY_COLUMNS})
        result['kpi'] = kpi
        status.kpi = kpi
        status.write(message='Test metrics generated.')
    else:
        status.kpi = {'Mean IOU': summary['mIoU'], 'mAcc': summary['mAcc']}
        status.write(dict(mode='test', **status.kpi))
    print(evaluation_tables(metric.per_class, summary), flush=True)
    os.makedirs(cfg.work_dir, exist_ok=True)
    with open(osp.join(cfg.work_dir, 'results.json'), 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2)
    return result
