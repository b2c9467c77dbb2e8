"""Which modules ``quantize.layers`` and ``quantize.skip_names`` select, as TAO matches them.

TAO 7.0.1's ``match_layer`` (``core/quantization/utils.py``): a pattern matches a module when
``fnmatch.fnmatch`` matches its qualified name (``backbone.block1.0.attn.q``), else its class
name (``Linear``); matching is case-sensitive on POSIX (``fnmatch`` normalises case only on
Windows). Layers apply in order (a later entry overrides an earlier one for the same module,
``native`` removes it), then ``skip_names`` remove modules. The root module (name ``''``) is
never matched.
"""
import fnmatch
from typing import Dict, Iterable, List, Optional, Tuple

import torch.nn as nn

from .config import NATIVE, LayerSettings, QuantizeSettings, TensorSettings

# Used when quantize.layers is empty (see default_layers).
DEFAULT_PATTERN = '*'


def match_layer(module: nn.Module, name: str, pattern: str) -> bool:
    """Whether ``pattern`` selects ``module`` (qualified ``name``): fnmatch on the name,
    then on the class name.

    Args:
        module: The module.
        name: Its qualified name in the model.
        pattern: A name, a class name or an fnmatch pattern (``*``, ``?``, ``[...]``).

    Raises:
        ValueError: An empty pattern.
    """
    if not pattern:
        raise ValueError('pattern cannot be empty')
    return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(type(module).__name__, pattern)


def named_modules(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``(name, module)`` of every submodule (the root left out, as TAO does)."""
    return [(n, m) for n, m in model.named_modules() if n]


def default_layers(backend: str) -> List[LayerSettings]:
    """What an empty ``quantize.layers`` means here: every module, int8 weights, and for
    static PTQ int8 activations too.

    TAO 7.0.1 quantises nothing for an empty list with torchao (an empty per-module map) and
    modelopt.pytorch (its ``{"default": {"enable": False}}`` safeguard), and everything
    ONNX Runtime / ModelOpt quantise as int8 with modelopt.onnx; a quantize task that
    quantises nothing is never what was meant, so all three get int8 here (with a note).
    """
    weights = TensorSettings('int8', None)
    activations = None if backend == 'torchao' else TensorSettings('int8', None)
    return [LayerSettings(DEFAULT_PATTERN, weights, activations)]


def skipped(modules: Iterable[Tuple[str, nn.Module]], patterns: Iterable[str]) -> List[str]:
    """Names of the ``modules`` some pattern of ``skip_names`` selects."""
    patterns = list(patterns)
    return [n for n, m in modules if any(match_layer(m, n, p) for p in patterns)]


def resolve_layers(model: nn.Module, settings: QuantizeSettings,
                   part: str = 'weights') -> Dict[str, TensorSettings]:
    """``{module name: settings}`` of ``part`` (``weights`` or ``activations``) after the
    layers in order and ``skip_names``; modules left unquantised are absent.

    Args:
        model: The fp32 model.
        settings: The checked ``quantize`` section (empty layers: :func:`default_layers`).
        part: ``weights`` or ``activations``.
    """
    modules = named_modules(model)
    layers = settings.layers or default_layers(settings.backend)
    chosen: Dict[str, TensorSettings] = {}
    for layer in layers:
        t: Optional[TensorSettings] = getattr(layer, part)
        if t is None:
            continue
        for name, module in modules:
            if match_layer(module, name, layer.module_name):
                if t.dtype == NATIVE:
                    chosen.pop(name, None)
                else:
                    chosen[name] = t
    for name in skipped(modules, settings.skip_names):
        chosen.pop(name, None)
    return chosen



def run_modules_one_by_one(model: nn.Module) -> nn.Module:
    """Make every module run through its own ``forward`` (``TAOSegFormerHead.fuse_levels``
    off): the fast head reads the Linear weights directly, which a quantised weight tensor
    or a quantizer hook would not see. Same outputs. Returns ``model``."""
    for module in model.modules():
        if hasattr(module, 'fuse_levels'):
            module.fuse_levels = False
    return model
