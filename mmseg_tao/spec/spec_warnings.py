"""Legal settings that probably do not do what the user wants, and accepted fields that are
set but have no effect here."""
from typing import List, Optional

from .ignored import ignored_settings
from .schema import ExperimentSpec
from .tao6 import tao6_of


def spec_warnings(spec: ExperimentSpec, task: Optional[str] = None) -> List[str]:
    """The warnings for a loaded spec.

    Args:
        spec: A loaded spec (TAO 5's form; a TAO 6/7 spec's Tao6Experiment).
        task: Warn about what this task reads (None: any task).
    """
    out = ignored_settings(spec, task)
    if tao6_of(spec):
        return out
    times = spec.dataset.repeat_data_times
    if times > ExperimentSpec().dataset.repeat_data_times and task in (None, 'train'):
        out.append(f'dataset.repeat_data_times ({times}) changes nothing in iteration-based '
                   'training (as in TAO): each image is drawn equally often either way; '
                   'train longer with train.max_iters')
    if task not in (None, 'train'):
        return out
    lr = spec.train.trainer.lr_config
    if lr.warmup_iters >= spec.train.max_iters:
        out.append(f'train.trainer.lr_config.warmup_iters ({lr.warmup_iters}) >= '
                   f'train.max_iters ({spec.train.max_iters}): the whole run is warm-up, the '
                   'learning rate never reaches train.trainer.sf_optim.lr nor decays')
    if spec.train.validate and spec.train.validation_interval and \
            spec.train.validation_interval > spec.train.max_iters:
        out.append(f'train.validation_interval ({spec.train.validation_interval}) > '
                   f'train.max_iters ({spec.train.max_iters}): validation never runs')
    return out
