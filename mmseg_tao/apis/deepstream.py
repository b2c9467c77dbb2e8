"""A DeepStream Gst-nvinfer config for an exported SegFormer ONNX file.

The file is what TAO writes with ``export.serialize_nvdsinfer: true`` (TAO 6.25.10:
``nvidia_tao_pytorch/cv/segformer/scripts/export.py`` ``run_export``, with
``cv/segformer/types/segformer_nvdsinfer.py`` ``SFNvDSInferConfig`` and
``core/types/nvdsinfer.py`` / ``core/utilities.py`` ``get_nvdsinfer_yaml``): YAML with one
``property`` group, lists joined with ``;``, holding onnx-file (the ONNX's base name),
labelfile-path (``labels.txt`` beside it: the class names joined with ``;`` on one line),
infer-dims ``3;H;W``, num-detected-classes, network-type 2 (segmentation),
model-color-format 0 (RGB), network-mode 2 (FP16), gie-unique-id 1, workspace-size
1048576, maintain-aspect-ratio 1, output-blob-names ``output``, offsets,
net-scale-factor, custom-lib-path ``/opt/nvidia/deepstream/deepstream/lib/
libnvds_infercustomparser_tao.so`` and parse-segmentation-func-name
``NvDsInferParseCustomSegformerTAO2``.

Where this one differs, and why:

* The parser follows the graph's output (NVIDIA-AI-IOT/deepstream_tao_apps,
  ``post_processor/nvdsinfer_custombboxparser_tao.cpp``):
  ``NvDsInferParseCustomSegformerTAO`` copies int64 class ids at the input size (TAO 5's
  argmax graph); ``NvDsInferParseCustomSegformerTAO2`` takes float logits [C,h,w] of any
  size, argmaxes and resizes them (nearest) to the input size (TAO 6's 1/4-size logits,
  and our full-size logits).
* TAO writes ``offsets = 255 * mean`` but always ``net-scale-factor = 1/127.5``, right
  only for its default std of 0.5. Here both come from the spec's mean / std (0-255
  scale): nvinfer computes ``net-scale-factor * (x - offsets)``, mmseg ``(x - mean) / std``.
  nvinfer has one scale for all channels, so a per-channel std is replaced by its mean
  (as NVIDIA's citysemsegformer config does: 0.01735207357279195 = 1 / mean(ImageNet
  std)) and the file says so.
* maintain-aspect-ratio is 0 (TAO: 1): frames are stretched to the input size, as
  mmdeploy's preprocessing for the export check does (``keep_ratio=False``), so that the
  class map covers the whole frame.
* model-color-format follows ``to_rgb`` (0: RGB, 1: BGR; offsets stay in the model's
  channel order), batch-size is written (TAO leaves nvinfer's default) and so is
  segmentation-output-order 0 (CHW, the graph's layout).
* A quantised (Q/DQ) ONNX, as ``mmseg-tao quantize`` writes with ``modelopt.onnx``, gets
  network-mode 1 (INT8) and no int8-calib-file: its QuantizeLinear / DequantizeLinear
  nodes carry the scales, so TensorRT builds it as INT8 without a calibration cache.
* The file is ``<onnx stem>_nvdsinfer_config.yaml`` (TAO: ``nvdsinfer_config.yaml``), so
  that both files of ``export.output: both`` get one in the same directory.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import yaml

TAO_PARSER_LIB = '/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser_tao.so'
ARGMAX_PARSER = 'NvDsInferParseCustomSegformerTAO'  # int64 class ids [N,1,H,W]
LOGITS_PARSER = 'NvDsInferParseCustomSegformerTAO2'  # float logits [N,C,h,w]
LABELS_FILE = 'labels.txt'


def scale_and_offsets(mean: Sequence[float],
                      std: Sequence[float]) -> Tuple[float, List[float], Optional[str]]:
    """nvinfer's ``net-scale-factor`` and ``offsets`` for mmseg's normalisation.

    Args:
        mean: Per-channel mean on the 0-255 scale, in the model's channel order.
        std: Per-channel std on the 0-255 scale.

    Returns:
        ``(net_scale_factor, offsets, note)``: ``offsets`` is ``mean`` and the factor
        ``1 / std``, exact when ``std`` is the same for every channel (``note`` None);
        otherwise ``1 / mean(std)`` and ``note`` says how far off the channels are.
    """
    offsets = [float(m) for m in mean]
    common = sum(float(s) for s in std) / len(std)
    note = None
    if len(set(float(s) for s in std)) > 1:
        worst = max(abs(float(s) / common - 1) for s in std)
        note = (f'std {[float(s) for s in std]} differs across channels but nvinfer has one '
                f'scale: net-scale-factor = 1 / mean(std) = 1 / {common:.6g}, so normalised '
                f'channels are off by up to {100 * worst:.2f}%')
    return 1.0 / common, offsets, note


def nvinfer_config(onnx_file: str, num_classes: int, height: int, width: int,
                   mean: Sequence[float], std: Sequence[float], float_logits: bool,
                   rgb: bool = True, batch_size: int = 1,
                   labels_file: Optional[str] = LABELS_FILE,
                   int8_qdq: bool = False) -> Tuple[str, Optional[str]]:
    """The text of a Gst-nvinfer config (YAML) for ``onnx_file``.

    Args:
        onnx_file: The ONNX file; the config names its base name (nvinfer resolves it
            beside the config file).
        num_classes: Number of classes (logit channels).
        height, width: The graph's input size.
        mean, std: The model's normalisation (0-255 scale, model channel order).
        float_logits: True for a float ``output`` (TAO 6's 1/4-size logits, or full-size
            logits), False for TAO 5's int64 argmax; picks the parser function.
        rgb: Whether the model takes RGB (mmseg ``bgr_to_rgb`` / TAO ``to_rgb``).
        batch_size: nvinfer's batch size (the fixed batch, or 1 for a dynamic axis).
        labels_file: The labels file's name beside the config, or None.
        int8_qdq: The graph is quantised with QuantizeLinear / DequantizeLinear nodes:
            network-mode 1 (INT8), no calibration cache.

    Returns:
        ``(text, note)``: ``note`` as in :func:`scale_and_offsets` (also a comment line).
    """
    factor, offsets, note = scale_and_offsets(mean, std)
    prop = {
        'onnx-file': osp.basename(onnx_file),
        'labelfile-path': labels_file,
        'network-type': 2,  # segmentation
        'infer-dims': f'3;{height};{width}',
        'num-detected-classes': num_classes,
        'net-scale-factor': factor,
        'offsets': ';'.join(str(o) for o in offsets),
        'model-color-format': 0 if rgb else 1,
        'batch-size': batch_size,
        'network-mode': 1 if int8_qdq else 2,  # INT8 for a Q/DQ graph, else FP16 as TAO
        'workspace-size': 1048576,
        'gie-unique-id': 1,
        'maintain-aspect-ratio': 0,  # stretch to H x W, as the export check does
        'output-blob-names': 'output',
        'segmentation-output-order': 0,  # CHW
        'parse-segmentation-func-name': LOGITS_PARSER if float_logits else ARGMAX_PARSER,
        'custom-lib-path': TAO_PARSER_LIB,
    }
    prop = {k: v for k, v in prop.items() if v is not None}
    output = ('float32 logits [N,C,h,w]' if float_logits else 'int64 class ids [N,1,H,W]')
    lines = [f'# DeepStream Gst-nvinfer config for {osp.basename(onnx_file)} '
             f'(written by mmseg-tao {"quantize" if int8_qdq else "export"}).',
             f"# Output 'output': {output}; "
             'nvinfer input = net-scale-factor * (pixel - offsets).']
    if int8_qdq:
        lines.append('# INT8 (network-mode 1): the Q/DQ model carries its scales in '
                     'QuantizeLinear/DequantizeLinear nodes, so TensorRT needs no calibration '
                     'cache (no int8-calib-file).')
    if note:
        lines.append(f'# Approximate normalisation: {note}.')
    return '\n'.join(lines) + '\n' + yaml.safe_dump({'property': prop}, sort_keys=False), note


def write_nvinfer_config(onnx_file: str, classes: Sequence[str],
                         **kwargs) -> Tuple[str, Optional[str]]:
    """Write ``<onnx stem>_nvdsinfer_config.yaml`` and ``labels.txt`` next to ``onnx_file``.

    Args:
        onnx_file: The exported ONNX file.
        classes: Class names by training id (num-detected-classes is their number).
        **kwargs: :func:`nvinfer_config`'s ``height``, ``width``, ``mean``, ``std``,
            ``float_logits``, ``rgb``, ``batch_size``, ``int8_qdq``.

    Returns:
        ``(config path, note)``; ``note`` as in :func:`scale_and_offsets`.
    """
    from ..utils.fileio import atomic_write
    root = osp.dirname(osp.abspath(onnx_file))
    # TAO's labels file: one line, ';'-separated.
    atomic_write(osp.join(root, LABELS_FILE), ';'.join(classes) + '\n')
    text, note = nvinfer_config(onnx_file, len(classes), **kwargs)
    path = osp.join(root, osp.splitext(osp.basename(onnx_file))[0] + '_nvdsinfer_config.yaml')
    atomic_write(path, text)
    return path, note
