from .hooks import *  # noqa: F401,F403
from .loops import TAOEpochBasedTrainLoop
from .optimizers import *  # noqa: F401,F403
from .resume import find_resume_checkpoint, is_complete_checkpoint

__all__ = ['TAOEpochBasedTrainLoop', 'find_resume_checkpoint', 'is_complete_checkpoint']
