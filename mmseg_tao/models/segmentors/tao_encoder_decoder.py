"""mmseg's EncoderDecoder, taking the decode head's input channels from the backbone."""
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS


@MODELS.register_module()
class TAOEncoderDecoder(EncoderDecoder):
    """:class:`EncoderDecoder` where ``decode_head.in_channels`` may be left out.

    When the decode head (or auxiliary head) config has no ``in_channels``, it is taken
    from the neck's or backbone's ``out_channels`` (every mmseg_tao backbone has it), so
    configs need not repeat the per-backbone channel table. Everything else, including
    mmdeploy's rewrites of EncoderDecoder, is inherited unchanged.
    """

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
