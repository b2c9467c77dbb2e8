"""The ``evaluate`` task: TAO's per-class and summary tables, and the same as JSON."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.runner import Runner

from ..models.utils import check_checkpoint_fits
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


def evaluation_tables(per_class: List[Dict], summary: Dict[str, float]) -> str:
    """TAO's two tables: Class | IoU | Acc, then Scope | mIoU | mAcc | aAcc."""
    classes = format_table(['Class', 'IoU', 'Acc'],
                           [[r['Class'], _num(r['IoU']), _num(r['Acc'])] for r in per_class])
    summ = format_table(['Scope', 'mIoU', 'mAcc', 'aAcc'],
                        [['global', _num(summary['mIoU']), _num(summary['mAcc']),
                          _num(summary['aAcc'])]])
    return f'{classes}\nSummary:\n\n{summ}'


def evaluate(spec_path: str, overrides: Sequence[str] = (), launcher: str = 'none',
             tao_version: Optional[int] = None) -> Dict:
    """Evaluate ``evaluate.checkpoint`` on ``dataset.test_dataset`` with
    ``evaluate.batch_size`` images per pass in ``evaluate.precision``; print the tables
    and write ``results.json`` to the evaluate results dir. Returns the results."""
    spec = prepare(spec_path, overrides, 'evaluate', tao_version)
    plan = single_process(spec, 'evaluate')
    cfg = task_config(spec, 'evaluate', launcher, plan)
    runner = Runner.from_cfg(cfg)
    check_checkpoint_fits(runner.model, spec.evaluate.checkpoint)
    fast_prediction(runner.model, spec.evaluate.precision)
    metrics = runner.test()
    metric = runner.test_evaluator.metrics[0]
    summary = {k: round(float(metrics[k]), 2) for k in ('mIoU', 'mAcc', 'aAcc')}
    result = dict(checkpoint=spec.evaluate.checkpoint,
                  num_images=len(runner.test_dataloader.dataset),
                  per_class=metric.per_class, summary=summary)
    print(evaluation_tables(metric.per_class, summary), flush=True)
    os.makedirs(cfg.work_dir, exist_ok=True)
    with open(osp.join(cfg.work_dir, 'results.json'), 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2)
    return result
