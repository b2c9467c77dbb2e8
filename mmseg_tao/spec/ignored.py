"""Fields TAO specs carry that change nothing here: accepted so that specs load, and
reported when set to anything but TAO's default.

:data:`IGNORED` lists TAO 5's, :data:`IGNORED_TAO6` TAO 6/7's; a row both forms have is
declared once below and used by both tables.
"""
import dataclasses
from typing import List, Optional, Tuple

from .rules import Ignored
from .schema import ExperimentSpec
from .tao6 import tao6_of
from .tao6_schema import Tao6Spec
from .validation import get_path

# Sections that belong to one task: their fields are reported for that task only.
TASK_SECTIONS = ('train', 'evaluate', 'inference', 'export', 'gen_trt_engine', 'quantize')

# ---- rows of both forms
FEAT_DOWNSAMPLE = Ignored('model.backbone.feat_downsample', "the backbones return TAO's "
                          'feature maps as they are')
HEAD_INPUTS = [
    Ignored('model.decode_head.in_channels', "taken from the backbone, as TAO's own table "
            'does'),
    Ignored('model.decode_head.in_index', 'every backbone level feeds the head'),
    Ignored('model.decode_head.feature_strides', 'fixed by the backbone'),
]
EVALUATE_TRT = Ignored('evaluate.trt_engine', 'TensorRT engines are out of scope; the '
                       'checkpoint is evaluated')
INFERENCE_TRT = Ignored('inference.trt_engine', 'TensorRT engines are out of scope; the '
                        'checkpoint is run')
GEN_TRT_ENGINE = Ignored('gen_trt_engine', 'TensorRT engines are out of scope (use trtexec '
                         'on the ONNX file)')

IGNORED: List[Ignored] = [
    Ignored('model.backbone.init_cfg', 'pretrained weights come from '
            'model.pretrained_model_path'),
    FEAT_DOWNSAMPLE,
    *HEAD_INPUTS,
    Ignored('model.decode_head.num_classes', 'the number of classes comes from the palette'),
    Ignored('dataset.seg_class_default', 'mask values outside the palette follow '
            'dataset.unknown_label'),
    Ignored('dataset.reduce_zero_label', 'map classes with the palette (label_id -> '
            'mapping_class) instead'),
    Ignored('dataset.train_dataset.pipeline.multi_scale', "TAO reads the test dataset's "
            'multi_scale only'),
    Ignored('dataset.val_dataset.pipeline.multi_scale', 'validation runs the test pipeline '
            '(test_dataset.pipeline.multi_scale)'),
    Ignored('train.exp_config.distributed', 'processes follow train.num_gpus / gpu_ids'),
    Ignored('train.exp_config.MASTER_ADDR', 'TAO 5.5 never reads it either; several nodes meet '
            'through MASTER_ADDR / NODE_RANK in the environment (README: Several machines)'),
    Ignored('train.exp_config.MASTER_PORT', 'TAO 5.5 never reads it either; one machine uses a '
            'free port, several nodes MASTER_PORT from the environment'),
    Ignored('train.exp_config.env_cfg.mp_cfg', 'dataloader workers fork; OpenCV threads off'),
    Ignored('train.exp_config.env_cfg.dist_cfg', 'NCCL on GPUs, gloo on CPU'),
    Ignored('train.param_scheduler', 'the schedule comes from train.trainer.lr_config and '
            'train.max_iters'),
    Ignored('train.default_hooks', "hooks come from the train section's intervals"),
    Ignored('train.encryption_key', 'checkpoints written here are not encrypted; the '
            'top-level encryption_key decrypts TAO-encrypted files'),
    EVALUATE_TRT,
    INFERENCE_TRT,
    Ignored('export.simplify', 'onnx-simplifier is not run'),
    Ignored('export.verbose', 'the exporter runs quietly'),
    Ignored('export.trt_engine', 'TensorRT engines are out of scope'),
    Ignored('export.trt_config', 'TensorRT engines are out of scope'),
    Ignored('export.onnx_config', 'the ONNX settings come from the export section'),
    Ignored('export.codebase_config', 'the mmdeploy codebase settings are fixed'),
    GEN_TRT_ENGINE,
]

IGNORED_TAO6: List[Ignored] = [
    Ignored('model_name', 'the model is named by model.backbone.type'),
    Ignored('wandb', 'logs go to the work dir (add a WandbVisBackend to the config)'),
    FEAT_DOWNSAMPLE,
    *HEAD_INPUTS,
    Ignored('train.segment.weights', 'TAO 6 stores these and never uses them'),
    Ignored('train.optim.monitor_name', 'checkpoints are kept by interval'),
    Ignored('train.tensorboard.infrequent_logging_frequency', 'TensorBoard gets the logged '
            'scalars at every logging interval, no images'),
    Ignored('train.use_distributed_sampler', 'mmengine shards data across processes'),
    Ignored('train.checkpointer', 'checkpoints are written by AtomicCheckpointHook'),
    Ignored('train.enable_lr_monitor', 'the learning rate is always logged'),
    Ignored('evaluate.num_nodes', 'one machine per run'),
    EVALUATE_TRT,
    Ignored('evaluate.vis_after_n_batches', 'evaluate writes metrics; inference writes '
            'every mask and overlay'),
    Ignored('inference.num_nodes', 'one machine per run'),
    INFERENCE_TRT,
    Ignored('inference.vis_after_n_batches', 'every image gets a mask and an overlay'),
    Ignored('export.gpu_id', 'the export runs on the CPU'),
    Ignored('export.on_cpu', 'the export runs on the CPU'),
    Ignored('export.serialize_nvdsinfer', 'the DeepStream nvinfer config is always written '
            'beside the ONNX file'),
    GEN_TRT_ENGINE,
]


def ignored_settings(spec: ExperimentSpec, task: Optional[str] = None) -> List[str]:
    """The :data:`IGNORED` fields (:data:`IGNORED_TAO6` for a TAO 6/7 spec) that ``spec``
    sets to something other than TAO's default.

    Args:
        spec: A loaded spec.
        task: Leave out the other tasks' sections (None: report every section).
    """
    tao6 = tao6_of(spec)
    spec, default, rows = ((tao6, Tao6Spec(), IGNORED_TAO6) if tao6 is not None
                           else (spec, ExperimentSpec(), IGNORED))
    out = []
    for row in rows:
        section = row.source.split('.')[0]
        if task is not None and section in TASK_SECTIONS and section != task:
            continue
        value = get_path(spec, row.source)
        if value != get_path(default, row.source):
            shown = 'set' if dataclasses.is_dataclass(value) else f'{value!r}'
            out.append(f'{row.source} ({shown}) is ignored: {row.why}')
    return out


def ignored_table() -> List[Tuple[str, str]]:
    """(spec path, why) rows of the accepted fields without effect."""
    return [(row.source, row.why) for row in IGNORED]


def ignored_table_tao6() -> List[Tuple[str, str]]:
    """(TAO 6 spec path, why) rows of the accepted TAO 6/7 fields without effect."""
    return [(row.source, row.why) for row in IGNORED_TAO6]
