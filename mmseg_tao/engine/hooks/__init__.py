from .atomic_checkpoint_hook import AtomicCheckpointHook, atomic_write_text
from .curves_hook import TrainingCurvesHook
from .deferred_runtime_info_hook import DeferredRuntimeInfoHook
from .experiment_record_hook import ExperimentRecordHook
from .tao_status_logger_hook import TAOStatusLoggerHook, write_status

__all__ = ['AtomicCheckpointHook', 'DeferredRuntimeInfoHook', 'ExperimentRecordHook',
           'TAOStatusLoggerHook', 'TrainingCurvesHook', 'atomic_write_text', 'write_status']
