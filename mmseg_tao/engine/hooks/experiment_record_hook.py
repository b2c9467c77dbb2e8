"""Save what a run was made from beside its checkpoints."""
import json
import os.path as osp

import yaml
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .atomic_checkpoint_hook import atomic_write_text


def _tao_dataset(dataset):
    while not hasattr(dataset, 'tao_palette') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset if hasattr(dataset, 'tao_palette') else None


@HOOKS.register_module()
class ExperimentRecordHook(Hook):
    """Before training, write into the work dir:

    - ``experiment_spec.yaml``: the resolved TAO spec (defaults and overrides applied; a
      TAO 6/7 spec in its own form) when the config carries it as ``tao_spec``, or the
      path of that spec's YAML file (configs from ``tools/spec2cfg.py`` do);
    - ``target_class_id_mapping.json``: class names, colours, and the mask value
      (``label_id``) -> training id mapping of the training dataset's palette.
    """

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        spec = runner.cfg.get('tao_spec')
        if isinstance(spec, str):  # the spec file spec2cfg wrote beside the config
            with open(spec, encoding='utf-8') as f:
                spec = yaml.safe_load(f)
        if spec:
            atomic_write_text(osp.join(runner.work_dir, 'experiment_spec.yaml'),
                              yaml.safe_dump(_plain(spec), sort_keys=False))
        dataset = _tao_dataset(runner.train_dataloader.dataset)
        if dataset is not None:
            p = dataset.tao_palette
            mapping = dict(
                classes=list(p.classes), colors=[list(c) for c in p.colors],
                label_id_to_train_id={str(k): v for k, v in sorted(p.label_map.items())},
                palette=[dict(e) for e in p.entries])
            atomic_write_text(osp.join(runner.work_dir, 'target_class_id_mapping.json'),
                              json.dumps(mapping, indent=2))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
