# The ISBI example with the FAN-Tiny hybrid backbone. TAO keeps decoder_params.embed_dim 768
# for FAN as for MiT (its 256 for FAN is `channels`, the width of mmseg's unused conv_seg), so
# TAO's FAN checkpoints fit this head.
_base_ = ['./segformer_isbi.py']
model = dict(backbone=dict(type='fan_tiny_8_p4_hybrid'), decode_head=dict(embed_dim=768))
tao_spec = None  # the base's recorded spec describes mit_b5
