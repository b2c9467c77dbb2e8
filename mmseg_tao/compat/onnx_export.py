"""Make mmdeploy 1.3.1 export with torch's TorchScript ONNX exporter.

torch >= 2.9 defaults ``torch.onnx.export`` to the dynamo exporter, which mmdeploy's
rewriters (symbolic and function rewrites of the TorchScript tracer) do not support.
A function rewriter, active only inside mmdeploy's export context, passes
``dynamo=False`` unless the caller chose otherwise.
"""
import importlib.util
import inspect

import torch


def _default_is_dynamo() -> bool:
    param = inspect.signature(torch.onnx.export).parameters.get('dynamo')
    return param is not None and param.default is True


def install() -> bool:
    """Register the rewriter if mmdeploy is installed and torch needs it.

    Returns:
        bool: Whether the rewriter was registered.
    """
    if importlib.util.find_spec('mmdeploy') is None or not _default_is_dynamo():
        return False
    from mmdeploy.core import FUNCTION_REWRITER

    @FUNCTION_REWRITER.register_rewriter(func_name='torch.onnx.export')
    def torch_onnx_export__torchscript(*args, **kwargs):
        ctx = FUNCTION_REWRITER.get_context()
        kwargs.setdefault('dynamo', False)
        return ctx.origin_func(*args, **kwargs)

    return True
