"""Train from a spec, resuming from the newest complete iter_N.pth; used by
tests/test_engine (which SIGKILLs it, or makes it fail).

    python train_killable.py SPEC WORK_DIR [--slow-save ITER]

--slow-save ITER: writing the checkpoint of iteration ITER pauses halfway (and prints
"SAVING <path>") so that the test can kill the process in the middle of the write.
"""
import argparse
import sys
import time

from mmengine.config import Config
from mmengine.fileio.backends import LocalBackend
from mmengine.runner import Runner

import mmseg_tao  # noqa: F401
from mmseg_tao.engine import find_resume_checkpoint
from mmseg_tao.spec import load_spec, spec_to_config

parser = argparse.ArgumentParser()
parser.add_argument('spec')
parser.add_argument('work_dir')
parser.add_argument('--slow-save', type=int)
parser.add_argument('--num-classes', type=int, help='override (a wrong value makes it fail)')
args = parser.parse_args()

if args.slow_save:
    put = LocalBackend.put

    def slow_put(self, obj, filepath):
        if f'iter_{args.slow_save}.pth' not in str(filepath):
            return put(self, obj, filepath)
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            print(f'SAVING {filepath}', flush=True)
            time.sleep(60)
            f.write(obj[len(obj) // 2:])

    LocalBackend.put = slow_put

cfg = spec_to_config(load_spec(args.spec, task='train'))
cfg['work_dir'] = args.work_dir
if args.num_classes:
    cfg['model']['decode_head']['num_classes'] = args.num_classes
resume_from = find_resume_checkpoint(args.work_dir)
if resume_from:
    cfg.update(load_from=resume_from, resume=True)
print(f'RESUME {resume_from}', flush=True)
runner = Runner.from_cfg(Config(cfg))
runner.train()
print(f'DONE {runner.iter}', flush=True)
sys.exit(0)
