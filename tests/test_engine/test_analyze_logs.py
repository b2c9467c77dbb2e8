"""mmseg 1.2.2's ``tools/analysis_tools/analyze_logs.py`` (shipped in ``mmseg/.mim``) on the
``scalars.json`` of a TAO training run: it reads our log as it is and draws loss and mIoU."""
import glob
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import mmseg
import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

import mmseg_tao  # noqa: F401
from mmseg_tao.engine.hooks.curves_hook import read_scalars, series
from mmseg_tao.spec import load_spec, spec_to_config
from seg_data import write_isbi_spec

pytestmark = pytest.mark.slow  # a training run and a subprocess

ANALYZE_LOGS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'analysis_tools',
                        'analyze_logs.py')


@pytest.fixture(scope='module')
def scalars(tmp_path_factory) -> str:
    """``scalars.json`` of a 4-iteration run of a TAO spec, validated at 2 and 4."""
    root = tmp_path_factory.mktemp('analyze_logs')
    spec = load_spec(write_isbi_spec(root, dict(
        max_iters=4, checkpoint_interval=4, logging_interval=1, validate=True,
        validation_interval=2, trainer=dict(lr_config=dict(warmup_iters=1))),
        val='separate'), ['train.trainer.sf_optim.lr=0.001'], task='train')
    cfg = spec_to_config(spec)
    cfg['work_dir'] = str(root / 'work')
    # A visualizer is a process-wide instance by name; another test's would be reused.
    cfg['visualizer']['name'] = 'analyze_logs'
    Runner.from_cfg(Config(cfg)).train()
    (path, ) = glob.glob(str(root / 'work' / '*' / 'vis_data' / 'scalars.json'))
    return path


def test_analyze_logs_plots_loss_and_miou(scalars, tmp_path):
    out = tmp_path / 'curves.png'
    proc = subprocess.run(
        [sys.executable, ANALYZE_LOGS, scalars, '--keys', 'loss', 'mIoU', '--out', str(out)],
        env=dict(os.environ, MPLBACKEND='Agg'), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert 'metric is loss' in proc.stdout and 'metric is mIoU' in proc.stdout
    with Image.open(out) as img:
        img.load()
        assert img.format == 'PNG' and img.size[0] > 0 and img.size[1] > 0


def test_analyze_logs_reads_each_step(scalars):
    """The tool groups rows by ``step``; each logged iteration gets its loss, each
    validation its mIoU, as our log holds them."""
    spec = importlib.util.spec_from_file_location('mmseg_analyze_logs', ANALYZE_LOGS)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    (by_step, ) = tool.load_json_logs([scalars])
    rows = read_scalars([scalars])
    loss_steps, losses = series(rows, 'loss')
    miou_steps, mious = series(rows, 'mIoU')
    assert loss_steps == [1, 2, 3, 4] and miou_steps == [2, 4]
    assert sorted(by_step) == loss_steps
    for step, loss in zip(loss_steps, losses):
        assert by_step[step]['loss'] == [loss]
    for step, miou in zip(miou_steps, mious):
        assert by_step[step]['mIoU'] == [miou]
