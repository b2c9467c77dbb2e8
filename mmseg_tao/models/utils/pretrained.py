"""Load backbone weights from any checkpoint layout users hold, and say what happened."""
from typing import Dict, List, NamedTuple

import torch.nn as nn
from mmengine.logging import print_log

from .checkpoint_layout import convert_state_dict, read_state_dict


class LoadReport(NamedTuple):
    """Outcome of :func:`load_pretrained`.

    Attributes:
        layout: Layout the checkpoint was recognised as.
        loaded: Number of tensors copied into the model.
        missing: Model keys the checkpoint did not provide.
        unexpected: Checkpoint keys (after conversion) the model has no place for.
        ignored: Checkpoint keys left out on purpose, with the reason.
    """
    layout: str
    loaded: int
    missing: List[str]
    unexpected: List[str]
    ignored: Dict[str, str]


def load_pretrained(model: nn.Module, filename: str, prefix: str = 'backbone.',
                    logger: str = 'current') -> LoadReport:
    """Load ``filename`` into ``model`` (a backbone), converting its layout.

    Whole-model checkpoints (TAO, NVlabs, mmseg, Hugging Face) contribute their backbone
    part (``prefix``); backbone-only files load as they are. Missing, unexpected and
    ignored keys are logged.

    Raises:
        ValueError: The layout is not recognised, a tensor's shape differs from the
            model's, or nothing at all could be loaded.
    """
    result = convert_state_dict(read_state_dict(filename))
    state, ignored = result.state_dict, dict(result.ignored)
    if any(k.startswith(prefix) for k in state):
        for key in [k for k in state if not k.startswith(prefix)]:
            ignored[key] = f'not under {prefix!r} (other part of a whole-model checkpoint)'
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

    own = model.state_dict()
    mismatched = [f'{k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}'
                  for k, v in state.items() if k in own and v.shape != own[k].shape]
    if mismatched:
        raise ValueError(
            f'{filename} ({result.layout} layout) does not fit {type(model).__name__}: '
            f'{len(mismatched)} tensor(s) differ in shape, e.g. ' + '; '.join(mismatched[:3])
            + '. Is it a checkpoint of another model size?')
    missing, not_in_model = model.load_state_dict(state, strict=False)
    loaded = len(state) - len(not_in_model)
    unexpected = list(not_in_model) + list(result.unmatched)
    if loaded == 0:
        raise ValueError(f'{filename} ({result.layout} layout): no tensor matches '
                         f'{type(model).__name__}; {len(unexpected)} unexpected keys, '
                         f'e.g. {unexpected[:3]}')
    print_log(f'Loaded {loaded} tensors into {type(model).__name__} from {filename} '
              f'(layout: {result.layout})', logger=logger)
    for title, keys in (('missing', missing), ('unexpected', unexpected)):
        if keys:
            print_log(f'{title} keys ({len(keys)}): {", ".join(keys)}', logger=logger,
                      level=30)
    if ignored:
        print_log(f'ignored keys ({len(ignored)}): ' + ', '.join(
            f'{k} [{why}]' for k, why in ignored.items()), logger=logger)
    return LoadReport(result.layout, loaded, list(missing), unexpected, ignored)
