"""A segmentor whose network is an ONNX file run by ONNX Runtime, predicting as the PyTorch
segmentor does: TAO 5's graph (class ids at the input size, argmax inside), or logits (at the
input size, or TAO 6's at 1/4 of it), Q/DQ INT8 graphs of either alike.

mmdeploy's backend model (:class:`mmdeploy.codebase.mmseg.deploy.segmentation_model.
End2EndModel`, with its ONNX Runtime wrapper) runs the graph; the logits are resized and
argmaxed by mmseg's own decode-head and segmentor code, so predictions are those of
:class:`~mmseg_tao.models.TAOEncoderDecoder` (whole or slide inference, ``seg_logits``
kept). mmdeploy's model alone would argmax logits before resizing them.

The module imports mmdeploy (an optional dependency), so it is not imported with
``mmseg_tao``: ``custom_imports = dict(imports=['mmseg_tao',
'mmseg_tao.models.segmentors.onnx_segmentor'])`` registers ``ONNXSegmentor`` for configs.
"""
import os.path as osp
from typing import List, Optional, Union

import torch
from mmdeploy.codebase.mmseg.deploy.segmentation_model import End2EndModel
from mmdeploy.utils import Backend
from mmengine.config import Config, ConfigDict
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors import BaseSegmentor, EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import SampleList

from ..utils.onnx_contract import OnnxModelError, read_onnx_contract
from ..utils.size_groups import test_step_in_size_groups


@MODELS.register_module()
class ONNXSegmentor(End2EndModel):
    """Segmentation by an ONNX graph in ONNX Runtime, predicting as
    :class:`~mmseg.models.segmentors.EncoderDecoder` does.

    Logits (TAO 6's at 1/4 size, or at the input size) are resized to the input (bilinear,
    the decode head's ``predict_by_feat``), then to the image's size and argmaxed
    (``postprocess_result``); ``seg_logits`` is kept. Slide inference sums the logits of
    model-sized windows as mmseg does. TAO 5's class ids are resized to the image's size
    (nearest, as mmdeploy does); they cannot be slid. A graph with a fixed batch size is
    fed batches of that size (a short last batch padded, the padding dropped).

    Args:
        onnx_file: The graph (its contract is read with :func:`read_onnx_contract`).
        num_classes: The classes the model predicts (checked against class ids seen).
        device: ``'cpu'`` (CPUExecutionProvider) or ``'cuda[:N]'`` (CUDAExecutionProvider).
        data_preprocessor: The segmentor's data preprocessor (normalisation).
        test_cfg: ``dict(mode='whole')`` or ``dict(mode='slide', crop_size=..., stride=...)``.
        align_corners: The decode head's, for resizing logits.
    """

    def __init__(self, onnx_file: str, num_classes: int, device: str = 'cpu',
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 test_cfg: Optional[dict] = None, align_corners: bool = False):
        contract = read_onnx_contract(onnx_file)
        deploy_cfg = Config(dict(
            onnx_config=dict(type='onnx', input_names=[contract.input_name],
                             output_names=[contract.output_name]),
            codebase_config=dict(type='mmseg', task='Segmentation',
                                 with_argmax=contract.output == 'argmax'),
            backend_config=dict(type='onnxruntime')))
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(Backend.ONNXRUNTIME, [onnx_file], device, deploy_cfg=deploy_cfg,
                         data_preprocessor=data_preprocessor)
        self.onnx_file = onnx_file
        self.contract = contract
        self.num_classes = self.out_channels = num_classes
        self.test_cfg = ConfigDict(test_cfg or dict(mode='whole'))
        self.align_corners = align_corners
        if self.test_cfg.get('mode') == 'slide' and contract.output == 'argmax':
            raise OnnxModelError(f'{onnx_file}: slide inference sums logits over windows; '
                                 f'this graph outputs {contract.describe()}: export logits '
                                 '(export.output: logits) or predict whole images')

    def test_step(self, data: Union[dict, tuple, list]) -> SampleList:
        """Predict a batch; images of different sizes (a graph with dynamic height and
        width) run in groups of equal size, as ``TAOEncoderDecoder.test_step`` does."""
        return test_step_in_size_groups(data, super().test_step)

    def forward(self, inputs: torch.Tensor, data_samples: SampleList,
                mode: str = 'predict', **kwargs) -> SampleList:
        """Predict ``inputs`` (``[N, 3, H, W]``, normalised); only ``mode='predict'``."""
        if mode != 'predict':
            raise ValueError(f'ONNXSegmentor predicts only (mode {mode!r})')
        metas = [s.metainfo for s in data_samples]
        if self.contract.output == 'argmax':
            return self.pack_result(self._run(inputs, metas), data_samples)
        if self.test_cfg.get('mode') == 'slide':
            # mmseg's sliding window over this class's encode_decode.
            logits = EncoderDecoder.slide_inference(self, inputs, metas)
        else:
            logits = self.encode_decode(inputs, metas)
        return BaseSegmentor.postprocess_result(self, logits, data_samples)

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        """Logits resized to the input, as ``TAOEncoderDecoder.encode_decode`` gives them."""
        logits = self._run(inputs, batch_img_metas).float()
        return BaseDecodeHead.predict_by_feat(self, logits, batch_img_metas)

    def _run(self, inputs: torch.Tensor, metas: List[dict]) -> torch.Tensor:
        """The graph's output for ``inputs``, in batches the graph takes."""
        c = self.contract
        fixed = (c.height, c.width)
        if None not in fixed and tuple(inputs.shape[2:]) != fixed:
            names = ', '.join(osp.basename(m['img_path']) for m in metas if m.get('img_path'))
            raise OnnxModelError(
                f'{self.onnx_file}: takes {c.height}x{c.width} inputs only, got '
                f'{inputs.shape[2]}x{inputs.shape[3]}{f" ({names})" if names else ""}: export '
                'with dynamic height and width (configs/deploy/'
                'segmentation_onnxruntime_dynamic.py) or use the checkpoint')
        step = c.batch or len(inputs)
        outs = []
        for start in range(0, len(inputs), step):
            chunk = inputs[start:start + step]
            n = len(chunk)
            if n < step:  # a fixed batch axis: fill up with the last image
                chunk = torch.cat([chunk, chunk[-1:].expand(step - n, *chunk.shape[1:])])
            # On the session's device (the wrapper binds the buffer where it lies).
            chunk = chunk.to(self.device, torch.float32)
            out = self.wrapper({self.input_name: chunk})[self.output_names[0]]
            outs.append(out[:n])
        out = torch.cat(outs)
        if c.output == 'argmax' and out.numel() and int(out.max()) >= self.num_classes:
            raise OnnxModelError(f'{self.onnx_file}: predicts class id {int(out.max())}; '
                                 f'the spec has {self.num_classes} classes')
        return out
