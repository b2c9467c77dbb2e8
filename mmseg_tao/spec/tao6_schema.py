"""The TAO 6.x / 7.x SegFormer experiment spec (PyTorch Lightning era), as typed dataclasses.

Keys and defaults are TAO's: ``nvidia_tao_core/config/segformer/default_config.py``
(tao-core 6.26.3) and ``nvidia_tao_pytorch/config/segformer/default_config.py`` (TAO 7.0.1,
which adds ``quantize`` and ``dataset.segment.quant_calibration_dataset.images_dir``).
Values are bounded in field metadata as in :mod:`mmseg_tao.spec.schema`; the same
:func:`~mmseg_tao.spec.validation.build` checks them. The augmentation defaults here are the
only copy: :mod:`mmseg_tao.datasets.transforms.tao6_pipeline` reads them from
:class:`Tao6Augmentation`.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from .backbones import (
    BACKBONES,
    TAO6_ONLY_BACKBONES,  # noqa: F401  (its home before backbones.py)
)
from .fields import PROBABILITY as _PROB
from .fields import GpuNodeFields
from .fields import spec_field as _f
from .quantize_schema import QuantizeSpec, Tao6QuantCalibration
from .schema import DecoderParams


# --------------------------------------------------------------------------- model
@dataclass
class Tao6Backbone:
    type: str = _f('fan_small_12_p4_hybrid', choices=BACKBONES)
    feat_downsample: bool = False
    pretrained_backbone_path: Optional[str] = None
    freeze_backbone: bool = False


@dataclass
class Tao6DecodeHead:
    # TAO 6 overrides in_channels from its channel map, as TAO 5 does.
    in_channels: List[int] = _f(factory=lambda: [64, 128, 320, 512], length=4, gt=0)
    in_index: List[int] = _f(factory=lambda: [0, 1, 2, 3], length=4, ge=0)
    feature_strides: List[int] = _f(factory=lambda: [4, 8, 16, 32], length=4, gt=0)
    align_corners: bool = False
    decoder_params: DecoderParams = _f(factory=DecoderParams)


@dataclass
class Tao6Model:
    backbone: Tao6Backbone = _f(factory=Tao6Backbone)
    decode_head: Tao6DecodeHead = _f(factory=Tao6DecodeHead)


# --------------------------------------------------------------------------- dataset
@dataclass
class Tao6RandomFlip:
    vflip_probability: float = _f(0.5, **_PROB)
    hflip_probability: float = _f(0.5, **_PROB)
    enable: bool = True


@dataclass
class Tao6RandomRotate:
    rotate_probability: float = _f(0.5, **_PROB)
    angle_list: List[float] = _f(factory=lambda: [90.0, 180.0, 270.0])
    enable: bool = True


@dataclass
class Tao6RandomColor:
    brightness: float = _f(0.3, ge=0.0)
    contrast: float = _f(0.3, ge=0.0)
    saturation: float = _f(0.3, ge=0.0)
    hue: float = _f(0.3, ge=0.0, le=0.5)
    enable: bool = True
    color_probability: float = _f(0.5, **_PROB)


@dataclass
class Tao6ScaleRandomCrop:
    scale_range: List[float] = _f(factory=lambda: [1.0, 1.2], length=2, gt=0.0)
    enable: bool = True


@dataclass
class Tao6Augmentation:
    random_flip: Tao6RandomFlip = _f(factory=Tao6RandomFlip)
    random_rotate: Tao6RandomRotate = _f(factory=Tao6RandomRotate)
    random_color: Tao6RandomColor = _f(factory=Tao6RandomColor)
    with_scale_random_crop: Tao6ScaleRandomCrop = _f(factory=Tao6ScaleRandomCrop)
    with_random_blur: bool = True
    with_random_crop: bool = True
    # On a 0-1 scale (TAO 5's img_norm_cfg is on 0-255).
    mean: List[float] = _f(factory=lambda: [0.5, 0.5, 0.5], length=3, ge=0.0, le=1.0)
    std: List[float] = _f(factory=lambda: [0.5, 0.5, 0.5], length=3, gt=0.0)


@dataclass
class Tao6PaletteEntry:
    label_id: int = _f(0, ge=0, le=255)
    mapping_class: str = 'background'
    rgb: List[int] = _f(factory=lambda: [0, 0, 0], length=3, ge=0, le=255)
    seg_class: str = 'background'


def _binary_palette() -> List[Tao6PaletteEntry]:
    return [Tao6PaletteEntry(0, 'foreground', [0, 0, 0], 'foreground'),
            Tao6PaletteEntry(1, 'background', [1, 1, 1], 'background')]


@dataclass
class Tao6Segment:
    root_dir: Optional[str] = None
    dataset: str = _f('SFDataset', choices=('SFDataset', ))
    num_classes: int = _f(2, gt=0)
    img_size: int = _f(256, gt=0)
    # -1: TAO's "unset"; training needs a batch size.
    batch_size: int = _f(-1, ge=-1)
    workers: int = _f(8, ge=0)
    shuffle: bool = True
    train_split: str = 'train'
    validation_split: str = 'val'
    test_split: str = 'val'
    predict_split: str = 'test'
    augmentation: Tao6Augmentation = _f(factory=Tao6Augmentation)
    # 'norm': masks are divided by 255 before palette matching (binary 0/255 masks).
    # TAO's example specs write the string 'None' for "no transform".
    label_transform: Optional[str] = _f('norm', choices=('norm', 'None', None))
    palette: List[Tao6PaletteEntry] = _f(factory=_binary_palette)
    # TAO 7.0.1: {images_dir: ''} (the quantize task's calibration images).
    quant_calibration_dataset: Tao6QuantCalibration = _f(factory=Tao6QuantCalibration)


@dataclass
class Tao6Dataset:
    segment: Tao6Segment = _f(factory=Tao6Segment)


# --------------------------------------------------------------------------- train
@dataclass
class Tao6Cudnn:
    benchmark: bool = False
    deterministic: bool = True


@dataclass
class Tao6Optim:
    monitor_name: str = 'val_loss'
    optim: str = _f('adamw', choices=('adamw', 'adam', 'sgd'))
    lr: float = _f(6e-5, ge=0.0)
    policy: str = _f('linear', choices=('linear', 'step'))
    momentum: float = _f(0.9, ge=0.0, le=1.0)
    weight_decay: float = _f(0.01, ge=0.0)


@dataclass
class Tao6SegmentLoss:
    loss: str = _f('ce', choices=('ce', 'mmiou'))
    # Stored by TAO 6 and never used by its loss.
    weights: List[float] = _f(factory=lambda: [0.5, 0.5, 0.5, 0.8, 1.0])


@dataclass
class Tao6Tensorboard:
    enabled: bool = False
    infrequent_logging_frequency: int = _f(2, gt=0)


@dataclass
class Tao6Train(GpuNodeFields):
    seed: int = _f(1234, ge=0)
    cudnn: Tao6Cudnn = _f(factory=Tao6Cudnn)
    num_epochs: int = _f(10, gt=0)
    checkpoint_interval: int = _f(1, gt=0)
    checkpoint_interval_unit: str = _f('epoch', choices=('epoch', 'step'))
    validation_interval: int = _f(1, gt=0)
    resume_training_checkpoint_path: Optional[str] = None
    results_dir: Optional[str] = None
    optim: Tao6Optim = _f(factory=Tao6Optim)
    pretrained_model_path: Optional[str] = None
    segment: Tao6SegmentLoss = _f(factory=Tao6SegmentLoss)
    tensorboard: Tao6Tensorboard = _f(factory=Tao6Tensorboard)
    use_distributed_sampler: bool = False
    sync_batchnorm: bool = False
    checkpointer: Optional[Any] = None
    enable_lr_monitor: bool = False


# --------------------------------------------------------------------------- tasks
@dataclass
class Tao6Evaluate(GpuNodeFields):
    checkpoint: Optional[str] = None
    trt_engine: Optional[str] = None
    results_dir: Optional[str] = None
    batch_size: int = _f(-1, ge=-1)
    vis_after_n_batches: int = _f(16, ge=1)


@dataclass
class Tao6Inference(Tao6Evaluate):
    pass


@dataclass
class Tao6Export:
    results_dir: Optional[str] = None
    gpu_id: int = _f(0, ge=0)
    checkpoint: Optional[str] = None
    onnx_file: Optional[str] = None
    on_cpu: bool = False
    input_channel: int = _f(3, choices=(1, 3))
    input_width: int = _f(544, gt=0)
    input_height: int = _f(544, gt=0)
    opset_version: int = _f(17, ge=13)
    batch_size: int = _f(-1, ge=-1)
    verbose: bool = False
    format: str = _f('onnx', choices=('onnx', ))
    serialize_nvdsinfer: bool = False


@dataclass
class Tao6Spec:
    """The whole TAO 6.x / 7.x SegFormer experiment spec."""
    model_name: Optional[str] = None
    encryption_key: Optional[str] = None
    results_dir: Optional[str] = ''
    wandb: Optional[Dict[str, Any]] = None
    model: Tao6Model = _f(factory=Tao6Model)
    dataset: Tao6Dataset = _f(factory=Tao6Dataset)
    train: Tao6Train = _f(factory=Tao6Train)
    evaluate: Tao6Evaluate = _f(factory=Tao6Evaluate)
    inference: Tao6Inference = _f(factory=Tao6Inference)
    export: Tao6Export = _f(factory=Tao6Export)
    # TensorRT engines are out of scope; accepted, reported.
    gen_trt_engine: Optional[Dict[str, Any]] = None
    quantize: QuantizeSpec = _f(factory=QuantizeSpec)
