"""The fixed structure of every generated config (the rules fill in its values)."""
from typing import Any, Dict

from ..datasets.palette import IGNORE_INDEX
from .writer import Ref

#: Every image-loading step of a generated pipeline: images are read as stored, without
#: applying an EXIF orientation tag (cv2 IMREAD_IGNORE_ORIENTATION), as TAO 6/7 reads them
#: (``Image.open(path).convert('RGB')``) and as masks are read; a rotated photograph would
#: no longer fit its mask. Written into the config, so that mmseg's inference and mmdeploy,
#: which build ``test_pipeline`` themselves, read images the same way.
LOAD_IMAGE = dict(type='LoadImageFromFile', color_type='color_ignore_orientation')


def skeleton() -> Dict[str, Any]:
    """The config's fixed structure; the rules of :data:`~mmseg_tao.spec.tao5_mapping.MAPPING`
    (and, for a TAO 6/7 spec, of ``MAPPING_TAO6``) fill in the values."""
    return dict(
        default_scope='mmseg',
        env_cfg=dict(cudnn_benchmark=True,
                     mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
                     dist_cfg=dict(backend='nccl')),
        # mmengine's deterministic is torch's strict mode (on CUDA, bilinear upsampling's
        # backward raises); TAODeterminismHook sets TAO's warn-only mode instead.
        randomness=dict(seed=None, deterministic=False),
        log_level='INFO',
        work_dir=None,
        crop_size=None,
        data_preprocessor=dict(type='SegDataPreProcessor', mean=None, std=None,
                               bgr_to_rgb=True, pad_val=0, seg_pad_val=IGNORE_INDEX,
                               size=None),
        model=dict(
            type='TAOEncoderDecoder',
            data_preprocessor=Ref('data_preprocessor'),
            backbone=dict(type=None, init_cfg=None),
            decode_head=dict(
                type='TAOSegFormerHead', embed_dim=None, num_classes=None,
                dropout_ratio=None, align_corners=False,
                norm_cfg=dict(type='BN', requires_grad=True), ignore_index=IGNORE_INDEX,
                loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                 loss_weight=1.0)),
            train_cfg=dict(),
            test_cfg=dict(mode='whole')),
        sync_bn=None,
        train_pipeline=[
            dict(LOAD_IMAGE),
            dict(type='LoadTAOAnnotations'),
            dict(type='RandomResize', scale=None, ratio_range=None, keep_ratio=True),
            dict(type='RandomCrop', crop_size=None, cat_max_ratio=None),
            dict(type='RandomFlip', prob=None),
            dict(type='PhotoMetricDistortion'),
            dict(type='PackSegInputs'),
        ],
        test_pipeline=[
            dict(LOAD_IMAGE),
            dict(type='Resize', scale=None, keep_ratio=True),
            dict(type='LoadTAOAnnotations'),
            dict(type='PackSegInputs'),
        ],
        tta_model=dict(type='SegTTAModel'),
        tta_pipeline=[
            dict(LOAD_IMAGE),
            dict(type='TestTimeAug', transforms=[
                [dict(type='Resize', scale=None, keep_ratio=True)],
                [dict(type='RandomFlip', prob=0.0, direction='horizontal')],
                [dict(type='LoadTAOAnnotations')],
                [dict(type='PackSegInputs')]]),
        ],
        tao_palette=None,
        tao_metainfo=None,
        train_dataloader=None,
        val_dataloader=None,
        test_dataloader=None,
        val_evaluator=None,
        test_evaluator=None,
        optim_wrapper=dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=None, betas=None, weight_decay=None),
            paramwise_cfg=dict(custom_keys=None),
            clip_grad=None),
        param_scheduler=None,
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=None, val_interval=None),
        val_cfg=None,
        test_cfg=None,
        default_hooks=dict(
            runtime_info=dict(type='DeferredRuntimeInfoHook'),
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=None, log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=None,
                            max_keep_ckpts=-1),
            sampler_seed=dict(type='DistSamplerSeedHook'),
            visualization=dict(type='SegVisualizationHook')),
        custom_hooks=[dict(type='TAOStatusLoggerHook', interval=None),
                      dict(type='ExperimentRecordHook'),
                      dict(type='TAODeterminismHook', deterministic=False),
                      dict(type='TrainingCurvesHook')],
        log_processor=dict(by_epoch=False),
        vis_backends=[dict(type='LocalVisBackend')],
        visualizer=dict(type='SegLocalVisualizer', vis_backends=Ref('vis_backends'),
                        name='visualizer'),
        find_unused_parameters=None,
        load_from=None,
        resume=False,
    )
