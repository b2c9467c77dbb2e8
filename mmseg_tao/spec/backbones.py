"""TAO's SegFormer backbone names: the spec's backbone choices, as plain data.

The backbones themselves (:mod:`mmseg_tao.models.backbones`) build their architecture
tables from these names; the spec schema reads them here so that a spec can be read and
checked without importing torch.
"""
from typing import Dict, Tuple

# TAO name -> MixTransformer.arch_zoo key.
MIT_NAMES: Dict[str, str] = {
    'mit_b0': 'b0',
    'mit_b1': 'b1',
    'mit_b2': 'b2',
    'mit_b3': 'b3',
    'mit_b4': 'b4',
    'mit_b5': 'b5',
}
# TAO name -> FAN.arch_zoo key.
FAN_NAMES: Dict[str, str] = {
    'fan_tiny_8_p4_hybrid': 'tiny',
    'fan_small_12_p4_hybrid': 'small',
    'fan_base_16_p4_hybrid': 'base',
    'fan_large_16_p4_hybrid': 'large',
}
# Every backbone a spec may name.
BACKBONES: Tuple[str, ...] = (*MIT_NAMES, *FAN_NAMES)

# TAO 6/7 backbones this package does not have (TAO 6's channel map in
# cv/segformer/model/segformer.py): name -> family.
TAO6_ONLY_BACKBONES: Dict[str, str] = {
    'vit_large_nvdinov2': 'NVDINOv2',
    'vit_giant_nvdinov2': 'NVDINOv2',
    'vit_base_nvclip_16_siglip': 'NV-CLIP',
    'vit_huge_nvclip_14_siglip': 'NV-CLIP',
    'c_radio_v2_vit_base_patch16_224': 'C-RADIO',
    'c_radio_v2_vit_large_patch16_224': 'C-RADIO',
    'c_radio_v2_vit_huge_patch16_224': 'C-RADIO',
    'c_radio_v3_vit_large_patch16_reg4_dinov2': 'C-RADIO',
}
