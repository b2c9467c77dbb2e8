"""The TAO 5.x SegFormer experiment spec, as typed dataclasses with TAO's defaults.

Field names, types and defaults follow TAO 5.x (``nvidia_tao_pytorch/cv/segformer/config``)
and its documentation. Metadata bounds values (``choices``, ``ge``, ``gt``, ``le``,
``length``); :mod:`mmseg_tao.spec.validation` enforces them. Where TAO's versions disagree
the choice is documented on the field. Sections that share fields compose the groups of
:mod:`mmseg_tao.spec.fields` (the GPU fields of every task section) or a common base
(:class:`RunTaskSpec` of evaluate and inference). Nothing here imports torch.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from .backbones import BACKBONES
from .fields import GpuFields, GpuNodeFields
from .fields import spec_field as _f
from .quantize_schema import QuantCalibrationSpec, QuantizeSpec

PRECISION_CHOICES = ('fp32', 'fp16', 'bf16')
StrOrList = Union[str, List[str]]


# --------------------------------------------------------------------------- model
@dataclass
class BackboneSpec:
    type: str = _f('mit_b1', choices=BACKBONES)
    # Accepted for compatibility; pretrained weights come from model.pretrained_model_path.
    init_cfg: Optional[Dict[str, Any]] = None
    feat_downsample: bool = False


@dataclass
class DecoderParams:
    embed_dim: int = _f(768, gt=0)


@dataclass
class NormCfgSpec:
    type: str = _f('SyncBN', choices=('BN', 'SyncBN'))
    requires_grad: bool = True


@dataclass
class LossSpec:
    type: str = _f('CrossEntropyLoss', choices=('CrossEntropyLoss', ))
    use_sigmoid: bool = _f(False, choices=(False, ))
    loss_weight: float = _f(1.0, gt=0.0)


@dataclass
class DecodeHeadSpec:
    type: str = _f('TAOSegFormerHead', choices=('TAOSegFormerHead', 'SegFormerHead'))
    decoder_params: DecoderParams = _f(factory=DecoderParams)
    align_corners: bool = False
    dropout_ratio: float = _f(0.1, ge=0.0, le=1.0)
    norm_cfg: NormCfgSpec = _f(factory=NormCfgSpec)
    loss_decode: LossSpec = _f(factory=LossSpec)
    # Accepted, not used: the SegFormer head's width is embed_dim, its inputs come from
    # the backbone (TAO's own table overrides in_channels too) and num_classes from the
    # palette.
    in_channels: Optional[List[int]] = None
    in_index: Optional[List[int]] = None
    feature_strides: Optional[List[int]] = None
    channels: Optional[int] = _f(None, gt=0)
    num_classes: Optional[int] = _f(None, gt=0)


@dataclass
class TestCfgSpec:
    mode: str = _f('whole', choices=('whole', 'slide'))
    crop_size: Optional[List[int]] = _f(None, length=2, gt=0)
    stride: Optional[List[int]] = _f(None, length=2, gt=0)


@dataclass
class ModelSpec:
    type: str = _f('EncoderDecoder', choices=('EncoderDecoder', ))
    backbone: BackboneSpec = _f(factory=BackboneSpec)
    decode_head: DecodeHeadSpec = _f(factory=DecodeHeadSpec)
    test_cfg: TestCfgSpec = _f(factory=TestCfgSpec)
    input_height: int = _f(512, gt=0)
    input_width: int = _f(512, gt=0)
    pretrained_model_path: Optional[str] = None


# --------------------------------------------------------------------------- dataset
@dataclass
class ImgNormCfg:
    mean: List[float] = _f(factory=lambda: [123.675, 116.28, 103.53], length=3, ge=0, le=255)
    std: List[float] = _f(factory=lambda: [58.395, 57.12, 57.375], length=3, gt=0)
    to_rgb: bool = True
    pad_val: int = _f(0, ge=0, le=255)
    seg_pad_val: int = _f(255, ge=0, le=255)
    type: str = _f('SegDataPreProcessor', choices=('SegDataPreProcessor', ))


@dataclass
class RandomCropSpec:
    crop_size: Optional[List[int]] = _f(None, length=2, gt=0)  # default: model input size
    cat_max_ratio: float = _f(0.75, gt=0.0, le=1.0)


@dataclass
class ResizeSpec:
    img_scale: Optional[List[int]] = _f(None, length=2, gt=0)
    ratio_range: List[float] = _f(factory=lambda: [0.5, 2.0], length=2, gt=0.0)
    keep_ratio: bool = True


@dataclass
class RandomFlipSpec:
    prob: float = _f(0.5, ge=0.0, le=1.0)


@dataclass
class ColorAugSpec:
    type: str = _f('PhotoMetricDistortion', choices=('PhotoMetricDistortion', ))


@dataclass
class AugmentationConfig:
    random_crop: RandomCropSpec = _f(factory=RandomCropSpec)
    resize: ResizeSpec = _f(factory=ResizeSpec)
    random_flip: RandomFlipSpec = _f(factory=RandomFlipSpec)
    color_aug: ColorAugSpec = _f(factory=ColorAugSpec)


@dataclass
class PadSpec:
    size_ht: Optional[int] = _f(None, gt=0)  # default: model input height
    size_wd: Optional[int] = _f(None, gt=0)
    pad_val: int = _f(0, ge=0, le=255)
    seg_pad_val: int = _f(255, ge=0, le=255)


@dataclass
class PipelineSpec:
    augmentation_config: AugmentationConfig = _f(factory=AugmentationConfig)
    # Accepted, not used: normalisation is dataset.img_norm_cfg, as in TAO 5.x.
    img_norm_cfg: Optional[ImgNormCfg] = None
    Pad: PadSpec = _f(factory=PadSpec)
    multi_scale: Optional[List[int]] = _f(None, length=2, gt=0)
    CollectKeys: List[str] = _f(factory=lambda: ['img', 'gt_semantic_seg'])


@dataclass
class SplitSpec:
    img_dir: Optional[StrOrList] = None
    ann_dir: Optional[StrOrList] = None
    pipeline: PipelineSpec = _f(factory=PipelineSpec)


@dataclass
class PaletteEntry:
    seg_class: str = 'background'
    rgb: List[int] = _f(factory=lambda: [255, 255, 255], length=3, ge=0, le=255)
    label_id: int = _f(0, ge=0, le=254)
    mapping_class: str = 'background'


@dataclass
class DatasetSpec:
    data_root: Optional[str] = None
    input_type: str = _f('rgb', choices=('rgb', 'grayscale'))
    img_norm_cfg: ImgNormCfg = _f(factory=ImgNormCfg)
    train_dataset: SplitSpec = _f(factory=SplitSpec)
    val_dataset: SplitSpec = _f(factory=SplitSpec)
    test_dataset: SplitSpec = _f(factory=SplitSpec)
    palette: Optional[List[PaletteEntry]] = None
    seg_class_default: Optional[PaletteEntry] = None
    repeat_data_times: int = _f(2, ge=1)
    # -1 (seen in TAO's export specs) means "not used by this task".
    batch_size: int = _f(32, ge=-1)
    workers_per_gpu: int = _f(8, ge=0)
    # None: pair images and masks of any usual suffix (png, jpg, jpeg, bmp, tif) by name.
    img_suffix: Optional[str] = None
    seg_map_suffix: Optional[str] = None
    shuffle: bool = True
    reduce_zero_label: bool = False
    dataloader: str = _f('Dataloader', choices=('Dataloader', 'DataLoader'))
    type: str = _f('BaseSegDataset', choices=('BaseSegDataset', ))
    # mmseg-tao: what to do with a mask value no palette entry defines.
    unknown_label: str = _f('error', choices=('error', 'ignore'))
    # mmseg-tao (TAO 7's quantize task for TAO 5 specs): the calibration images.
    quant_calibration_dataset: QuantCalibrationSpec = _f(factory=QuantCalibrationSpec)


# --------------------------------------------------------------------------- train
@dataclass
class EnvCfg:
    cudnn_benchmark: bool = True
    mp_cfg: Optional[Dict[str, Any]] = None
    dist_cfg: Optional[Dict[str, Any]] = None


@dataclass
class ExpConfig:
    manual_seed: Optional[int] = 49
    deterministic: bool = False
    # Accepted for compatibility; processes are placed by num_gpus / gpu_ids (torchrun).
    distributed: bool = True
    gpu_ids: List[int] = _f(factory=lambda: [0], ge=0)
    MASTER_ADDR: str = '127.0.0.1'
    MASTER_PORT: int = _f(25678, gt=0, le=65535)
    env_cfg: EnvCfg = _f(factory=EnvCfg)
    default_scope: str = _f('mmseg', choices=('mmseg', ))
    log_level: str = _f('INFO', choices=('DEBUG', 'INFO', 'WARNING', 'ERROR'))


@dataclass
class ParamwiseEntry:
    lr_mult: float = _f(1.0, ge=0.0)
    decay_mult: float = _f(1.0, ge=0.0)


@dataclass
class ParamwiseCfg:
    pos_block: ParamwiseEntry = _f(factory=lambda: ParamwiseEntry(decay_mult=0.0))
    norm: ParamwiseEntry = _f(factory=lambda: ParamwiseEntry(decay_mult=0.0))
    head: ParamwiseEntry = _f(factory=lambda: ParamwiseEntry(lr_mult=10.0))


@dataclass
class SFOptim:
    type: str = _f('AdamW', choices=('AdamW', ))
    lr: float = _f(6e-5, ge=0.0)
    # TAO 5.0 uses [0.9, 0.999] (and the paper's AdamW); TAO 5.5's docs say [0.0, 0.9].
    # We keep AdamW's standard [0.9, 0.999].
    betas: List[float] = _f(factory=lambda: [0.9, 0.999], length=2, ge=0.0, le=1.0)
    paramwise_cfg: ParamwiseCfg = _f(factory=ParamwiseCfg)
    weight_decay: float = _f(5e-4, ge=0.0)


@dataclass
class LRConfig:
    policy: str = _f('poly', choices=('poly', ))
    warmup: str = _f('linear', choices=('linear', ))
    warmup_iters: int = _f(1500, ge=0)
    warmup_ratio: float = _f(1e-6, ge=0.0, le=1.0)
    power: float = _f(1.0, ge=0.0)
    min_lr: float = _f(0.0, ge=0.0)
    by_epoch: bool = _f(False, choices=(False, ))


@dataclass
class TrainerSpec:
    find_unused_parameters: bool = True
    sf_optim: SFOptim = _f(factory=SFOptim)
    lr_config: LRConfig = _f(factory=LRConfig)
    # Max gradient norm; 0 or null: no clipping (TAO accepts the field and ignores it).
    grad_clip: Optional[float] = _f(0.0, ge=0.0)


@dataclass
class TrainSpec(GpuNodeFields):
    exp_config: ExpConfig = _f(factory=ExpConfig)
    max_iters: int = _f(10, gt=0)
    checkpoint_interval: int = _f(1, gt=0)
    logging_interval: int = _f(10, gt=0)
    resume_training_checkpoint_path: Optional[str] = None
    validate: bool = False
    validation_interval: Optional[int] = _f(1, gt=0)
    trainer: TrainerSpec = _f(factory=TrainerSpec)
    results_dir: Optional[str] = None
    encryption_key: Optional[str] = None
    resume: bool = False
    # Accepted for compatibility; the schedule comes from trainer.lr_config and max_iters
    # (TAO's fixed PolyLR end of 160000 is one of its defects).
    param_scheduler: Optional[List[Any]] = None
    default_hooks: Optional[Dict[str, Any]] = None
    # mmseg-tao: mixed precision is a choice (TAO always trains in fp16).
    amp: bool = False
    max_keep_ckpts: Optional[int] = _f(None, gt=0)


# --------------------------------------------------------------------------- tasks
@dataclass
class RunTaskSpec(GpuFields):
    """What evaluate and inference share: a checkpoint run on GPUs over the test images."""
    checkpoint: Optional[str] = None
    trt_engine: Optional[str] = None
    gpu_id: Optional[int] = _f(None, ge=0)  # TAO < 5.5 name of gpu_ids
    # Images per forward pass (null: 1).
    batch_size: Optional[int] = _f(None, gt=0)
    results_dir: Optional[str] = None
    encryption_key: Optional[str] = None
    exp_config: ExpConfig = _f(factory=ExpConfig)


@dataclass
class EvaluateSpec(RunTaskSpec):
    # mmseg-tao: number format of the model's weights and activations (cast once).
    precision: str = _f('fp32', choices=PRECISION_CHOICES)


@dataclass
class InferenceSpec(RunTaskSpec):
    # mmseg-tao: 'whole' resizes to the model input; 'slide' tiles large images.
    mode: str = _f('whole', choices=('whole', 'slide'))
    # mmseg-tao: the colour's weight in vis_tao/ overlays (TAO 5.5's inferencer draws 0.8).
    overlay_opacity: float = _f(0.8, ge=0.0, le=1.0)
    # mmseg-tao: number format of the model's weights and activations (cast once), and
    # torch.compile (CUDA graphs on a GPU) for repeated fixed shapes.
    precision: str = _f('fp32', choices=PRECISION_CHOICES)
    compile: bool = False


@dataclass
class TensorRTSpec:
    data_type: str = _f('FP32', choices=('FP32', 'FP16', 'INT8', 'fp32', 'fp16', 'int8'))
    workspace_size: int = _f(1024, gt=0)
    min_batch_size: int = _f(1, gt=0)
    opt_batch_size: int = _f(1, gt=0)
    max_batch_size: int = _f(1, gt=0)
    calibration: Optional[Dict[str, Any]] = None


@dataclass
class ExportSpec:
    checkpoint: Optional[str] = None
    onnx_file: Optional[str] = None
    input_channel: int = _f(3, choices=(1, 3))
    input_width: int = _f(1024, gt=0)
    input_height: int = _f(1024, gt=0)
    # TAO 5.5 defaults to 13 (mmdeploy needs >= 13 on current torch); 17 is our default.
    opset_version: int = _f(17, ge=13)
    # -1: dynamic batch axis; N: fixed batch N (export.format tao6 only: the 'onnx' graph's
    # batch axis is always dynamic).
    batch_size: int = _f(-1, ge=-1)
    verbose: bool = False
    verify: bool = True
    simplify: bool = False
    num_gpus: int = _f(1, ge=1)  # accepted; the export runs on one device
    trt_engine: Optional[str] = None
    trt_config: TensorRTSpec = _f(factory=TensorRTSpec)
    onnx_config: Optional[Dict[str, Any]] = None
    codebase_config: Optional[Dict[str, Any]] = None
    exp_config: ExpConfig = _f(factory=ExpConfig)
    encryption_key: Optional[str] = None
    results_dir: Optional[str] = None
    # mmseg-tao: argmax inside the graph ([N,1,H,W] int64, as TAO), logits ([N,C,H,W],
    # for DeepStream-style post-processing) or both (<onnx_file> and <stem>_logits.onnx).
    # export.format 'onnx' only.
    output: str = _f('both', choices=('argmax', 'logits', 'both'))
    # mmseg-tao: the ONNX contract. 'onnx': TAO 5's (mmdeploy; export.output above).
    # 'tao6': TAO 6's: float32 logits [N,C,H/4,W/4], the decode head's output (no resize,
    # no argmax), input 'input', output 'output', batch from batch_size. Note that TAO 6's
    # own export.format 'onnx' means that TAO 6 contract. Either way a DeepStream nvinfer
    # config (<stem>_nvdsinfer_config.yaml) and labels.txt are written next to the file.
    format: str = _f('onnx', choices=('onnx', 'tao6'))


@dataclass
class GenTrtEngineSpec:
    """Accepted so TAO specs load unchanged; TensorRT engines are out of scope here."""
    onnx_file: Optional[str] = None
    trt_engine: Optional[str] = None
    input_channel: int = _f(3, choices=(1, 3))
    input_width: int = _f(224, gt=0)
    input_height: int = _f(224, gt=0)
    opset_version: int = _f(12, gt=0)
    batch_size: int = _f(-1, ge=-1)
    verbose: bool = False
    gpu_id: int = _f(0, ge=0)
    results_dir: Optional[str] = None
    tensorrt: TensorRTSpec = _f(factory=TensorRTSpec)


@dataclass
class ExperimentSpec:
    """The whole TAO SegFormer experiment spec."""
    model: ModelSpec = _f(factory=ModelSpec)
    dataset: DatasetSpec = _f(factory=DatasetSpec)
    train: TrainSpec = _f(factory=TrainSpec)
    evaluate: EvaluateSpec = _f(factory=EvaluateSpec)
    inference: InferenceSpec = _f(factory=InferenceSpec)
    export: ExportSpec = _f(factory=ExportSpec)
    gen_trt_engine: GenTrtEngineSpec = _f(factory=GenTrtEngineSpec)
    # mmseg-tao: TAO 7's quantize section (TAO 5 has no quantize task).
    quantize: QuantizeSpec = _f(factory=QuantizeSpec)
    results_dir: Optional[str] = None
    encryption_key: Optional[str] = None
