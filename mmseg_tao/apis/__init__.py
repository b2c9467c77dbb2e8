"""The TAO tasks as functions: train, evaluate, inference, export, quantize (from a spec)."""
from .evaluate import evaluate, evaluation_tables
from .experiment import fast_prediction, task_config
from .export import deploy_config, export, pixel_agreement
from .inference import inference, overlay
from .launch import LaunchPlan, plan_launch
from .quantize import quantize
from .train import train

__all__ = ['train', 'evaluate', 'inference', 'export', 'quantize', 'task_config',
           'evaluation_tables', 'deploy_config', 'pixel_agreement', 'overlay',
           'fast_prediction', 'LaunchPlan', 'plan_launch']
