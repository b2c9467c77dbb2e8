# The ISBI example with MiT-B0 (decoder width 256, as the SegFormer paper's B0).
_base_ = ['./segformer_isbi.py']
model = dict(backbone=dict(type='mit_b0'), decode_head=dict(embed_dim=256))
tao_spec = None  # the base's recorded spec describes mit_b5
