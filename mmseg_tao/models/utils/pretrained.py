"""Load backbone weights from any checkpoint layout users hold, strictly, and say what
happened."""
from typing import Dict, List, NamedTuple

import torch.nn as nn
from mmengine.logging import print_log

from ...compat.checkpoint import CheckpointReadError
from .checkpoint_layout import (
    CheckpointMismatchError,
    convert_state_dict,
    read_state_dict,
)
from .checkpoint_layout.fit import key_listing, likely_backbone


class LoadReport(NamedTuple):
    """Outcome of :func:`load_pretrained`.

    Attributes:
        layout: Layout the checkpoint was recognised as.
        loaded: Number of tensors copied into the model.
        missing: Model keys the checkpoint did not provide (always empty: a missing key
            is an error; kept for callers that log it).
        unexpected: Checkpoint keys of the backbone part the model has no place for
            (logged; e.g. classification-only tensors of an ImageNet file).
        ignored: Checkpoint keys left out on purpose, with the reason (ImageNet heads,
            the other parts of a whole-model checkpoint).
    """
    layout: str
    loaded: int
    missing: List[str]
    unexpected: List[str]
    ignored: Dict[str, str]


def load_pretrained(model: nn.Module, filename: str, prefix: str = 'backbone.',
                    logger: str = 'current') -> LoadReport:
    """Load ``filename`` into ``model`` (a backbone), converting its layout, strictly.

    Whole-model checkpoints (TAO 5/6/7, NVlabs, mmseg, Hugging Face) contribute their
    backbone part (``prefix``; the rest, e.g. a decode head, is ignored and logged);
    backbone-only files load as they are. Every tensor of the model must come from the
    file, with its shape: nothing is left random. Tensors of the file the model has no
    place for are logged as unexpected.

    Raises:
        CheckpointMismatchError: The layout is not recognised, or keys are missing or of
            another shape (named, with the backbone the file looks like).
        CheckpointReadError: The file cannot be read (unsafe, truncated, encrypted...).
    """
    try:
        result = convert_state_dict(read_state_dict(filename))
    except CheckpointReadError:
        raise
    except ValueError as err:
        raise CheckpointMismatchError(f'{filename}: {err}') from None
    state, ignored = result.state_dict, dict(result.ignored)
    unmatched = list(result.unmatched)
    if any(k.startswith(prefix) for k in state):
        for key in [k for k in state if not k.startswith(prefix)]:
            ignored[key] = f'not under {prefix!r} (other part of a whole-model checkpoint)'
        for key in [k for k in unmatched if not k.startswith(prefix)]:
            ignored[key] = f'not under {prefix!r} (other part of a whole-model checkpoint)'
            unmatched.remove(key)
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own] + unmatched
    shapes = [f'{k}: {list(own[k].shape)} vs {list(v.shape)}' for k, v in state.items()
              if k in own and v.shape != own[k].shape]
    if missing or shapes:
        lines = [f'{filename} ({result.layout} layout) does not fit '
                 f'{type(model).__name__}:']
        lines += key_listing('missing from the checkpoint', missing)
        lines += key_listing('in the checkpoint but not in the backbone', unexpected)
        lines += key_listing('of another shape (model vs checkpoint)', shapes)
        guess = likely_backbone({prefix + k: v for k, v in state.items()})
        lines.append('likely cause: the checkpoint is of another backbone' +
                     (f' (it looks like {guess})' if guess else ''))
        raise CheckpointMismatchError('\n'.join(lines))
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    print_log(f'Loaded {len(own)} tensors into {type(model).__name__} from {filename} '
              f'(layout: {result.layout})', logger=logger)
    if unexpected:
        print_log(f'unexpected keys ({len(unexpected)}), not loaded: '
                  f'{", ".join(unexpected)}', logger=logger, level=30)
    if ignored:
        print_log(f'ignored keys ({len(ignored)}): ' + ', '.join(
            f'{k} [{why}]' for k, why in ignored.items()), logger=logger)
    return LoadReport(result.layout, len(own), [], unexpected, ignored)
