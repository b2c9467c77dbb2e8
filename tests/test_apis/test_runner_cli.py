"""The arguments tools/train.py and tools/test.py share, with mmseg's tools' rules."""
import os
import os.path as osp

import pytest
import torch.distributed as dist

from mmseg_tao.apis.runner_cli import (
    parse_runner_args,
    process_group_teardown,
    runner_config,
    runner_parser,
)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'my_cfg.py'
    path.write_text("model = dict(type='X', depth=2)\n")
    return str(path)


def _cfg(argv):
    return runner_config(parse_runner_args(runner_parser('t', 'config'), argv))


def test_work_dir_rules(config, tmp_path):
    assert _cfg([config]).work_dir == osp.join('./work_dirs', 'my_cfg')
    assert _cfg([config, '--work-dir', 'w']).work_dir == 'w'
    with open(config, 'a') as f:
        f.write("work_dir = 'from_cfg'\n")
    assert _cfg([config]).work_dir == 'from_cfg'
    assert _cfg([config, '--work-dir', 'w']).work_dir == 'w'


def test_options_and_launcher(config, monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    cfg = _cfg([config, '--cfg-options', 'model.depth=5', 'a.b=[1,2]',
                '--launcher', 'pytorch', '--local-rank', '3'])
    assert cfg.model == dict(type='X', depth=5) and cfg.a.b == [1, 2]
    assert cfg.launcher == 'pytorch'
    assert os.environ['LOCAL_RANK'] == '3'


def test_tool_arguments_extend_the_common_ones(config):
    parser = runner_parser('t', 'config')
    parser.add_argument('checkpoint')
    args = parse_runner_args(parser, [config, 'c.pth', '--work-dir', 'w'])
    assert (args.config, args.checkpoint, args.work_dir) == (config, 'c.pth', 'w')
    with pytest.raises(SystemExit):
        parse_runner_args(parser, [config, 'c.pth', '--launcher', 'nope'])


def test_process_group_torn_down_on_error(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg', rank=0,
                            world_size=1)
    with pytest.raises(RuntimeError, match='boom'):
        with process_group_teardown():
            assert dist.is_initialized()
            raise RuntimeError('boom')
    assert not dist.is_initialized()
