"""Checkpoint layouts: the one place that knows how SegFormer / FAN checkpoints name keys.

Three jobs, one module each:

* recognise a layout: :func:`detect_layout` asks each registered :class:`Layout` in turn
  (:mod:`.layout`);
* convert it to the package's layout: :func:`convert_state_dict` (for backbones and the
  converter tool: leaves out what segmentation does not use) and :func:`to_model_layout`
  (whole models, as loading converts them) (:mod:`.layout`);
* check the fit against a model, strictly, naming the keys: :func:`check_state_dict_fits`
  (:mod:`.fit`);
* write a checkpoint for another tool (TAO 5's form, TAO 6/7's Lightning file):
  :func:`convert_checkpoint` (:mod:`.writing`).

Known layouts, each a :class:`Layout` unit (recogniser + converter) in its own module:

========================  ==============================================================
``tao6``                  TAO 6.x / 7.x Lightning checkpoints (``model.backbone.*``,
                          ``model.decoder.*``; the fuse convolution's bias folded into the
                          BatchNorm) (:mod:`.tao6`, also :func:`to_tao6_checkpoint`)
``tao``                   TAO 5.x / NVlabs SegFormer, whole model or backbone only
                          (``mit_bX.pth`` ImageNet files included), TAO / NVlabs FAN: the
                          package's own names (:mod:`.nvlabs`)
``mmseg-mit``             mmsegmentation 1.x ``MixVisionTransformer``
                          (``layers.i.0.projection``, packed ``attn.attn.in_proj``)
``hf-segformer``          Hugging Face transformers Segformer, as published on the hub
                          and saved by transformers (``segformer.encoder.block.i.j``)
``hf-segformer-v5``       transformers >= 5.9 module names (``segformer.stages.i.blocks.j``,
                          ``q_proj`` / ``k_proj`` / ``v_proj``)
========================  ==============================================================

A new layout is a module that declares its :class:`Layout`, registered below (or by
:func:`register_layout`, ``before=`` a layout whose recogniser would also accept its keys).
Renaming rules are rows of a table (regex -> template, see :func:`rename`); keys no rule
matches are returned as ``unmatched``, never dropped silently. TAO's unused
``decode_head.conv_seg`` is dropped by one rule, :func:`drop_unused_classifier`.
"""
from .fit import CheckpointMismatchError, check_checkpoint_fits, check_state_dict_fits
from .hf_segformer import HF_SEGFORMER, HF_SEGFORMER_V5
from .layout import (
    LAYOUTS,
    UNUSED_CLASSIFIER_REASON,
    ConversionResult,
    Layout,
    convert_state_dict,
    detect_layout,
    drop_unused_classifier,
    is_unused_classifier,
    keys_matching,
    register_layout,
    rename,
    to_model_layout,
)
from .mmseg_mit import MMSEG_MIT
from .nvlabs import NVLABS
from .reading import read_state_dict, unwrap_checkpoint
from .tao6 import TAO6, is_lightning_checkpoint, to_tao6_checkpoint, to_tao6_state_dict
from .writing import TARGETS, convert_checkpoint, read_checkpoint

# In the order they are tried; no two of these recognise the same keys.
for _layout in (NVLABS, MMSEG_MIT, HF_SEGFORMER, HF_SEGFORMER_V5):
    register_layout(_layout)
# TAO 6/7 keys are TAO 5's under model.: the tao recogniser would accept them too.
register_layout(TAO6, before='tao')

__all__ = ['LAYOUTS', 'Layout', 'register_layout', 'keys_matching', 'rename',
           'detect_layout', 'ConversionResult', 'convert_state_dict', 'to_model_layout',
           'UNUSED_CLASSIFIER_REASON', 'is_unused_classifier', 'drop_unused_classifier',
           'CheckpointMismatchError', 'check_state_dict_fits', 'check_checkpoint_fits',
           'read_state_dict', 'unwrap_checkpoint', 'is_lightning_checkpoint',
           'to_tao6_checkpoint', 'to_tao6_state_dict', 'TARGETS', 'convert_checkpoint',
           'read_checkpoint']
