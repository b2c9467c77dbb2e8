"""mmseg's EncoderDecoder, taking the decode head's input channels from the backbone and
loading whole-model checkpoints of other SegFormer layouts."""
from mmengine.logging import print_log
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from ..utils.ckpt_convert import convert_state_dict, detect_layout


@MODELS.register_module()
class TAOEncoderDecoder(EncoderDecoder):
    """:class:`EncoderDecoder` where ``decode_head.in_channels`` may be left out.

    When the decode head (or auxiliary head) config has no ``in_channels``, it is taken
    from the neck's or backbone's ``out_channels`` (every mmseg_tao backbone has it), so
    configs need not repeat the per-backbone channel table.

    Whole-model state dicts in another layout (Hugging Face Segformer, mmseg MiT) are
    converted when loaded (``load_from``, ``tools/test.py``, ``init_model``), so such
    checkpoints need no conversion step. Everything else, including mmdeploy's rewrites of
    EncoderDecoder, is inherited unchanged.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._register_load_state_dict_pre_hook(self._convert_foreign_layout)

    @staticmethod
    def _convert_foreign_layout(state_dict, prefix, *args) -> None:
        keys = [k for k in state_dict if k.startswith(prefix)]
        sub = {k[len(prefix):]: state_dict[k] for k in keys}
        try:
            layout = detect_layout(sub)
        except ValueError:
            return  # not a SegFormer layout we know: load_state_dict reports the keys
        if layout == 'tao':
            return
        result = convert_state_dict(sub, layout)
        for k in keys:
            del state_dict[k]
        state_dict.update({prefix + k: v for k, v in result.state_dict.items()})
        # Unconvertible keys stay, so that loading reports them as unexpected.
        state_dict.update({prefix + k: sub[k] for k in result.unmatched if k in sub})
        print_log(f'converted a {layout} checkpoint ({len(result.state_dict)} tensors) to '
                  'the mmseg-tao layout', logger='current')

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
