from .atomic_checkpoint_hook import AtomicCheckpointHook, atomic_write_text
from .curves_hook import TrainingCurvesHook
from .deferred_runtime_info_hook import DeferredRuntimeInfoHook
from .determinism_hook import TAODeterminismHook, set_tao_determinism
from .experiment_record_hook import ExperimentRecordHook
from .preemption_hook import PREEMPTED_EXIT_CODE, Preempted, PreemptionHook
from .tao_status_logger_hook import TAOStatusLoggerHook, write_status

__all__ = ['AtomicCheckpointHook', 'DeferredRuntimeInfoHook', 'ExperimentRecordHook',
           'PREEMPTED_EXIT_CODE', 'Preempted', 'PreemptionHook', 'TAODeterminismHook',
           'TAOStatusLoggerHook', 'TrainingCurvesHook',
           'atomic_write_text', 'set_tao_determinism', 'write_status']
