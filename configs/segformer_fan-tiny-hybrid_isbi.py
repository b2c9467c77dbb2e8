# The ISBI example with the FAN-Tiny hybrid backbone (TAO uses a 256-wide decoder for FAN).
_base_ = ['./segformer_isbi.py']
model = dict(backbone=dict(type='fan_tiny_8_p4_hybrid'), decode_head=dict(embed_dim=256))
tao_spec = None  # the base's recorded spec describes mit_b5
