"""How ``train`` reads a multi-node run from the environment: TAO 6/7's variables
(MASTER_ADDR, MASTER_PORT, NODE_RANK / RANK, WORLD_SIZE = nodes, NUM_GPU_PER_NODE), TAO 5.5's
(torchrun's PET_*), a rendezvous endpoint, SLURM's; and the exit-2 errors when they are
missing or disagree with the spec."""
import pytest
import torch

import mmseg_tao  # noqa: F401
from mmseg_tao.apis import launch
from mmseg_tao.apis.nodes import NodePlan, NodeSetupError, decide_launch
from mmseg_tao.cli import tasks
from mmseg_tao.spec import load_spec, num_processes
from seg_data import write_isbi_spec

MASTER = dict(MASTER_ADDR='10.0.0.1', MASTER_PORT='29400')


def test_tao6_variables_give_torchruns_node_arguments():
    how, plan = decide_launch(2, 4, 'none', dict(MASTER, NODE_RANK='1'))
    assert how == 'torchrun' and plan.world_size == 8
    assert plan.torchrun_args() == ['--nnodes=2', '--nproc_per_node=4', '--node_rank=1',
                                    '--master_addr=10.0.0.1', '--master_port=29400']
    # TAO 6/7 take RANK when NODE_RANK is unset, and WORLD_SIZE / NUM_GPU_PER_NODE (nodes,
    # GPUs per node) when they agree with the spec.
    env = dict(MASTER, RANK='0', WORLD_SIZE='2', NUM_GPU_PER_NODE='4')
    assert decide_launch(2, 4, 'none', env)[1].node_rank == 0


def test_tao5_torchrun_variables_and_rendezvous():
    """TAO 5.5 passes only --nnodes / --nproc_per_node: torchrun's PET_* do the rest."""
    env = dict(PET_NODE_RANK='1', PET_MASTER_ADDR='node0', PET_MASTER_PORT='29500')
    plan = decide_launch(3, 1, 'none', env)[1]
    assert (plan.node_rank, plan.master_addr, plan.master_port) == (1, 'node0', 29500)
    env = dict(PET_RDZV_ENDPOINT='node0:29400', PET_RDZV_ID='job7')
    plan = decide_launch(2, 2, 'none', env)[1]
    assert plan.torchrun_args() == ['--nnodes=2', '--nproc_per_node=2', '--rdzv-backend=c10d',
                                    '--rdzv-endpoint=node0:29400', '--rdzv-id=job7']


@pytest.mark.parametrize('env,message', [
    ({}, 'train.num_nodes is 2: a multi-node run needs MASTER_ADDR, MASTER_PORT and '
         'NODE_RANK on every node (or a torchrun rendezvous PET_RDZV_ENDPOINT); missing: '
         'NODE_RANK, MASTER_ADDR, MASTER_PORT'),
    (dict(MASTER), 'missing: NODE_RANK'),
    (dict(MASTER, NODE_RANK='2'), 'NODE_RANK=2: expected a node rank in 0..1 '
                                  '(train.num_nodes is 2)'),
    (dict(MASTER, NODE_RANK='x'), "NODE_RANK='x': expected an integer"),
    (dict(MASTER, NODE_RANK='0', MASTER_PORT='70000'), 'MASTER_PORT=70000: expected a TCP '
                                                       'port in 1..65535'),
    (dict(MASTER, NODE_RANK='0', WORLD_SIZE='4'),
     'WORLD_SIZE=4 (for a TAO 6/7 launch: the number of nodes) but train.num_nodes is 2'),
    (dict(MASTER, NODE_RANK='0', NUM_GPU_PER_NODE='8'),
     'NUM_GPU_PER_NODE=8 but train.num_gpus is 1'),
])
def test_missing_or_disagreeing_variables(env, message):
    with pytest.raises(NodeSetupError) as err:
        decide_launch(2, 1, 'none', env)
    assert message in str(err.value)


def test_launched_process_count_must_be_the_specs():
    assert decide_launch(2, 2, 'pytorch', dict(WORLD_SIZE='4')) == ('pytorch', None)
    with pytest.raises(NodeSetupError, match=r'WORLD_SIZE=2 processes, but the spec asks '
                       r'for train.num_nodes 2 x train.num_gpus 2 = 4'):
        decide_launch(2, 2, 'pytorch', dict(WORLD_SIZE='2'))
    # A worker of a torchrun started by hand (no --launcher) is recognised.
    env = dict(TORCHELASTIC_RUN_ID='r', LOCAL_RANK='0', WORLD_SIZE='2', RANK='1')
    assert decide_launch(2, 1, 'none', env) == ('pytorch', None)


SLURM = dict(SLURM_PROCID='3', SLURM_NODEID='1', SLURM_NNODES='2', SLURM_LOCALID='1',
             SLURM_NODELIST='gpu[01-02]', SLURM_JOB_NAME='seg', MASTER_ADDR='gpu01')


def test_slurm_tasks():
    # One task per process: mmengine's slurm launcher takes ranks and master from SLURM.
    assert decide_launch(2, 2, 'none', dict(SLURM, SLURM_NTASKS='4')) == ('slurm', None)
    # One task per node: torchrun starts the node's processes, SLURM_NODEID is its rank.
    how, plan = decide_launch(2, 2, 'none', dict(SLURM, SLURM_NTASKS='2'))
    assert how == 'torchrun'
    assert (plan.node_rank, plan.master_addr, plan.master_port) == (1, 'gpu01', 29500)
    with pytest.raises(NodeSetupError, match=r'SLURM_NTASKS=3, but the spec asks for '
                       r'train.num_nodes 2 x train.num_gpus 2 = 4 processes; run srun with '
                       r'--nodes=2 and --ntasks-per-node=2'):
        decide_launch(2, 2, 'none', dict(SLURM, SLURM_NTASKS='3'))
    # A batch script's single task, or an interactive shell, is an ordinary machine.
    assert decide_launch(1, 1, 'none', dict(SLURM, SLURM_NTASKS='1')) == ('none', None)
    how, plan = decide_launch(1, 2, 'none', dict(SLURM, SLURM_NTASKS='1'))
    assert how == 'torchrun' and plan.num_nodes == 1
    env = dict(SLURM, SLURM_NTASKS='4', SLURM_JOB_NAME='bash', NODE_RANK='0', MASTER_PORT='1')
    assert decide_launch(2, 2, 'none', env)[0] == 'torchrun'


def test_num_nodes_multiplies_processes_and_turns_on_sync_bn(tmp_path, monkeypatch):
    spec = load_spec(write_isbi_spec(tmp_path, dict(max_iters=2)),
                     ['train.num_nodes=3', 'train.num_gpus=2', 'evaluate.num_gpus=2'])
    assert num_processes(spec) == 6 and num_processes(spec, 'evaluate') == 2
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    spec = load_spec(write_isbi_spec(tmp_path, dict(max_iters=2)), ['train.num_nodes=2'])
    plan = launch.plan_launch(spec, 'train', launched=True)
    assert (plan.nproc, plan.world_size, plan.sync_bn) == (1, 2, True)
    assert not launch.plan_launch(spec, 'evaluate').sync_bn


def test_cli_exit_2_names_the_missing_variable(tmp_path, monkeypatch, capsys):
    for name in ('MASTER_ADDR', 'MASTER_PORT', 'NODE_RANK', 'RANK', 'WORLD_SIZE',
                 'PET_RDZV_ENDPOINT', 'PET_NODE_RANK', 'SLURM_PROCID', 'TORCHELASTIC_RUN_ID'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    spec = write_isbi_spec(tmp_path, dict(max_iters=2))
    assert tasks.main(['-e', spec, 'train.num_nodes=2'], task='train') == 2
    err = capsys.readouterr().err
    assert 'missing: NODE_RANK, MASTER_PORT' in err and 'Traceback' not in err
    assert not (tmp_path / 'results').exists() or not list((tmp_path / 'results').rglob('*.pth'))


def test_node_plan_describes_itself():
    plan = NodePlan(2, 1, node_rank=1, master_addr='127.0.0.1', master_port=1234)
    assert plan.describe() == ('1 process(es) on this node, 2 in all (node 1 of 2, master '
                               '127.0.0.1:1234)')


def test_a_restarted_group_does_not_read_the_dead_attempts_keys(monkeypatch):
    """torchrun keeps one store for the job; a restarted group gets a fresh key space.

    Without it, a worker of attempt 1 read a dead attempt-0 worker's gloo address and failed
    with 'Gloo connectFullMesh failed ... Connection refused' (test_multinode's restart run).
    """
    from datetime import timedelta

    from torch.distributed import TCPStore

    from mmseg_tao.apis.nodes import free_port, restarted_group_kwargs
    assert restarted_group_kwargs({}) == {}
    port = free_port()
    agent = TCPStore('127.0.0.1', port, 1, is_master=True, timeout=timedelta(seconds=10))
    worker = dict(TORCHELASTIC_RUN_ID='r', LOCAL_RANK='0', RANK='0', WORLD_SIZE='1',
                  MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                  TORCHELASTIC_USE_AGENT_STORE='True')
    stores = []
    for attempt in ('0', '1'):
        env = dict(worker, TORCHELASTIC_RESTART_COUNT=attempt)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        kwargs = restarted_group_kwargs(env)
        assert (kwargs['rank'], kwargs['world_size']) == (0, 1)
        stores.append(kwargs['store'])
    stores[0].set('0/rank_1', b'127.0.0.1:13212')  # the dead worker's address
    assert not stores[1].check(['0/rank_1'])
    assert agent.check(['mmseg_tao/attempt_0/0/rank_1'])
