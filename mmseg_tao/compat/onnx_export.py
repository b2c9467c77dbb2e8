"""Make mmdeploy 1.3.1 export with torch's TorchScript ONNX exporter.

torch >= 2.9 defaults ``torch.onnx.export`` to the dynamo exporter, which mmdeploy's
rewriters (symbolic and function rewrites of the TorchScript tracer) do not support.
A function rewriter, active only inside mmdeploy's export context, passes
``dynamo=False`` unless the caller chose otherwise.
"""
import functools
import importlib.util
import inspect
from typing import Callable

import torch

from .registry import Patch, register


def _default_is_dynamo() -> bool:
    param = inspect.signature(torch.onnx.export).parameters.get('dynamo')
    return param is not None and param.default is True


def _needed() -> bool:
    """mmdeploy is installed and torch exports with dynamo unless told otherwise."""
    return importlib.util.find_spec('mmdeploy') is not None and _default_is_dynamo()


def _torchscript_by_default(export: Callable) -> Callable:

    @functools.wraps(export)
    def torch_onnx_export__torchscript(*args, **kwargs):
        kwargs.setdefault('dynamo', False)
        return export(*args, **kwargs)

    return torch_onnx_export__torchscript


register(Patch(
    name='mmdeploy-onnx-torchscript',
    target='torch.onnx.export',
    reason="torch >= 2.9 exports with dynamo by default, which mmdeploy's rewriters do not "
           'support: inside mmdeploy exports only, dynamo=False unless the caller chose',
    versions='mmdeploy 1.3.1 on torch >= 2.9',
    wrap=_torchscript_by_default, needed=_needed, via='mmdeploy-rewriter'))
