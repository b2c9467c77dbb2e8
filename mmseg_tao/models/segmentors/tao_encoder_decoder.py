"""mmseg's EncoderDecoder, taking the decode head's input channels from the backbone,
loading whole-model checkpoints of other SegFormer layouts, and predicting fast: reduced
precision with weights cast once, mixed-size batches, torch.compile."""
from typing import Callable, List, Optional, Union

import torch
from mmengine.logging import print_log
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import SampleList

from ..utils.checkpoint_layout import LAYOUTS, to_model_layout
from ..utils.size_groups import test_step_in_size_groups

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


@MODELS.register_module()
class TAOEncoderDecoder(EncoderDecoder):
    """:class:`EncoderDecoder` where ``decode_head.in_channels`` may be left out.

    When the decode head (or auxiliary head) config has no ``in_channels``, it is taken
    from the neck's or backbone's ``out_channels`` (every mmseg_tao backbone has it), so
    configs need not repeat the per-backbone channel table.

    Whole-model state dicts in another layout (TAO 6/7 Lightning files, Hugging Face
    Segformer, mmseg MiT) are converted when loaded (``load_from``, ``tools/test.py``,
    ``init_model``, mmdeploy), so such checkpoints need no conversion step.

    Prediction can run in float16 / bfloat16 with the weights cast once
    (:meth:`set_precision`, instead of autocast's cast per op) and compiled
    (:meth:`compile_inference`); a batch of images of different sizes is predicted in
    groups of equal size (:meth:`test_step`). Training, export and mmdeploy's rewrites of
    EncoderDecoder are inherited unchanged.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._register_load_state_dict_pre_hook(self._convert_foreign_layout)
        # Host-to-device copies of the batch need not block the CPU (they overlap the
        # previous step when the dataloader pins memory; from pageable memory they are
        # synchronous anyway). mmseg's SegDataPreProcessor does not take the argument.
        if hasattr(self.data_preprocessor, '_non_blocking'):
            self.data_preprocessor._non_blocking = True
        self.compute_dtype: torch.dtype = torch.float32
        self._logits_fn: Optional[Callable] = None
        self._cudagraphs = False

    # ------------------------------------------------------------------ fast prediction
    def set_precision(self, precision: Union[str, torch.dtype]) -> 'TAOEncoderDecoder':
        """Predict in ``precision`` (``'fp32'``, ``'fp16'``, ``'bf16'`` or a dtype).

        The backbone, neck and heads are cast once (weights and norm statistics); images
        are cast as they enter and the logits return as float32 at the decode head's
        resolution, so resizing and argmax run in float32. For prediction only: train in
        float32 weights (``train.amp`` for mixed precision).
        """
        dtype = PRECISIONS.get(precision, precision)
        if dtype not in PRECISIONS.values():
            raise ValueError(f'precision {precision!r}: expected one of '
                             f'{", ".join(PRECISIONS)}')
        for name in ('backbone', 'neck', 'decode_head', 'auxiliary_head'):
            module = getattr(self, name, None)
            if isinstance(module, torch.nn.Module):
                module.to(dtype)
        self.compute_dtype = dtype
        return self

    def compile_inference(self, mode: Optional[str] = None) -> 'TAOEncoderDecoder':
        """Compile backbone + decode head for prediction with ``torch.compile``.

        ``mode`` as torch.compile's; ``'reduce-overhead'`` (the default on CUDA) replays
        CUDA graphs, which pays off for repeated fixed shapes (whole-image inference).
        Shapes are specialised: each new input size compiles once more.
        """
        if mode is None:
            on_gpu = next(self.backbone.parameters()).device.type == 'cuda'
            mode = 'reduce-overhead' if on_gpu else 'default'
        self._logits_fn = torch.compile(self._logits, mode=mode, dynamic=False)
        self._cudagraphs = mode in ('reduce-overhead', 'max-autotune')
        return self

    def _logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decode_head.forward(self.extract_feat(inputs))

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        if self.compute_dtype == torch.float32 and self._logits_fn is None:
            return super().encode_decode(inputs, batch_img_metas)
        inputs = inputs.to(self.compute_dtype)
        if self._logits_fn is not None:
            if self._cudagraphs:
                torch.compiler.cudagraph_mark_step_begin()
            logits = self._logits_fn(inputs)
        else:
            logits = self._logits(inputs)
        # Resized (a new tensor) before the next call can reuse CUDA-graph output buffers.
        return self.decode_head.predict_by_feat(logits.float(), batch_img_metas)

    def test_step(self, data: Union[dict, tuple, list]) -> SampleList:
        """Predict a batch; images of different sizes are run in groups of equal size
        (mmseg's data preprocessor stacks only equal sizes at test time)."""
        return test_step_in_size_groups(data, super().test_step)

    def _convert_foreign_layout(self, state_dict, prefix, *args) -> None:
        keys = [k for k in state_dict if k.startswith(prefix)]
        try:
            # Given the model's keys, TAO's unused conv_seg is dropped when it has none.
            layout, converted, count = to_model_layout(
                {k[len(prefix):]: state_dict[k] for k in keys}, model_keys=self.state_dict())
        except ValueError:
            return  # not a SegFormer layout we know: load_state_dict reports the keys
        for k in keys:
            del state_dict[k]
        state_dict.update({prefix + k: v for k, v in converted.items()})
        if not LAYOUTS[layout].native:
            print_log(f'converted a {layout} checkpoint ({count} tensors) to the mmseg-tao '
                      'layout', logger='current')

    def _with_in_channels(self, head_cfg: dict) -> dict:
        if head_cfg.get('in_channels') is not None:
            return head_cfg
        source = self.neck if self.with_neck else self.backbone
        channels = getattr(source, 'out_channels', None)
        if channels is None:
            raise ValueError(
                f'decode head {head_cfg.get("type")!r} has no in_channels and '
                f'{type(source).__name__} does not expose out_channels; set in_channels')
        return dict(head_cfg, in_channels=list(channels))

    def _init_decode_head(self, decode_head: dict) -> None:
        super()._init_decode_head(self._with_in_channels(decode_head))

    def _init_auxiliary_head(self, auxiliary_head) -> None:
        if isinstance(auxiliary_head, dict):
            auxiliary_head = self._with_in_channels(auxiliary_head)
        elif isinstance(auxiliary_head, list):
            auxiliary_head = [self._with_in_channels(h) for h in auxiliary_head]
        super()._init_auxiliary_head(auxiliary_head)
