"""Several machines: how the nodes of one training run find each other.

One spec, one command per node: ``mmseg-tao train -e spec.yaml train.num_nodes=N`` on each
node starts ``train.num_gpus`` processes there (torchrun), and the nodes meet through the
variables TAO's launchers pass on (facts from NVIDIA/tao_pytorch_backend):

- TAO 5.5 (``core/entrypoint.py``, dc07b02) runs ``torchrun --nproc_per_node={num_gpus}
  --nnodes={num_nodes}`` and nothing else: the node rank and the master come from
  torchrun's own variables (``PET_NODE_RANK``, ``PET_MASTER_ADDR``, ``PET_MASTER_PORT``, or a
  rendezvous ``PET_RDZV_ENDPOINT``); its spec's ``exp_config.MASTER_ADDR`` / ``MASTER_PORT``
  are never read.
- TAO 6/7 (``core/entrypoint.py`` and ``core/distributed/validator.py``, 6.25.10) take
  ``WORLD_SIZE`` (the number of *nodes*), ``NODE_RANK`` (else ``RANK``), ``MASTER_ADDR``,
  ``MASTER_PORT`` and ``NUM_GPU_PER_NODE``; with ``WORLD_SIZE`` above 1 the other three are
  required, the node rank must lie in ``0..WORLD_SIZE-1`` and the port in 1024..65535.
  SegFormer then trains with Lightning's ``Trainer(num_nodes=train.num_nodes)``.

Here the spec's ``train.num_nodes`` / ``train.num_gpus`` are the truth: a variable that
disagrees with them is an error (TAO 6/7 would silently rewrite the spec). Under SLURM
(``srun``) the same command takes ranks and the master from SLURM: with one task per
process through mmengine's ``slurm`` launcher, with one task per node through torchrun
(``SLURM_NODEID`` as the node rank).
"""
import os
import socket
import subprocess
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple

from ..spec.validation import SpecError

#: torchrun's default port, also mmengine's slurm launcher's.
DEFAULT_PORT = 29500
# Job names of an interactive SLURM shell (salloc / srun --pty bash), as Lightning reads them:
# there the command is not a task of a distributed step.
_INTERACTIVE_JOBS = ('bash', 'interactive')


class NodeSetupError(SpecError):
    """The variables of a multi-node or SLURM run are missing or disagree with the spec
    (a user error: exit status 2). The message names the variable and what was expected."""

    def __init__(self, message: str):
        self.problems = [message]
        self.source = None
        ValueError.__init__(self, message)


@dataclass
class NodePlan:
    """How torchrun starts this node's processes and meets the other nodes.

    Attributes:
        num_nodes: Nodes of the run (``train.num_nodes``).
        nproc_per_node: Processes on each node (``train.num_gpus``).
        node_rank: This node's rank (static rendezvous); None with ``rdzv_endpoint``.
        master_addr: The address of node 0 (static rendezvous).
        master_port: Its port.
        rdzv_endpoint: A torchrun rendezvous ``host:port`` (c10d) instead of the above.
        rdzv_backend: The rendezvous backend with ``rdzv_endpoint``.
        rdzv_id: The rendezvous (job) id with ``rdzv_endpoint``.
    """
    num_nodes: int
    nproc_per_node: int
    node_rank: Optional[int] = 0
    master_addr: Optional[str] = '127.0.0.1'
    master_port: Optional[int] = None
    rdzv_endpoint: Optional[str] = None
    rdzv_backend: str = 'c10d'
    rdzv_id: Optional[str] = None

    @property
    def world_size(self) -> int:
        """All processes of the run."""
        return self.num_nodes * self.nproc_per_node

    def torchrun_args(self) -> List[str]:
        """torchrun's arguments for this node (before the command it runs)."""
        args = [f'--nnodes={self.num_nodes}', f'--nproc_per_node={self.nproc_per_node}']
        if self.rdzv_endpoint:
            args += [f'--rdzv-backend={self.rdzv_backend}',
                     f'--rdzv-endpoint={self.rdzv_endpoint}']
            return args + ([f'--rdzv-id={self.rdzv_id}'] if self.rdzv_id else [])
        if self.num_nodes > 1:
            args += [f'--node_rank={self.node_rank}', f'--master_addr={self.master_addr}']
        return args + [f'--master_port={self.master_port}']

    def describe(self) -> str:
        """One line for the log: where this node stands in the run."""
        if self.num_nodes == 1:
            return f'{self.nproc_per_node} process(es) on this machine'
        meet = (f'rendezvous {self.rdzv_backend} at {self.rdzv_endpoint}' if self.rdzv_endpoint
                else f'node {self.node_rank} of {self.num_nodes}, master '
                f'{self.master_addr}:{self.master_port}')
        return (f'{self.nproc_per_node} process(es) on this node, {self.world_size} in all '
                f'({meet})')


@dataclass
class SlurmTask:
    """This process as a SLURM task (``srun`` sets these variables for each task).

    Attributes:
        ntasks: ``SLURM_NTASKS``, the tasks of the step.
        procid: ``SLURM_PROCID``, this task's rank.
        nodeid: ``SLURM_NODEID``, this node's index in the allocation.
        nnodes: ``SLURM_NNODES`` (``SLURM_JOB_NUM_NODES``), the nodes of the allocation.
        nodelist: ``SLURM_NODELIST``, the nodes in SLURM's compressed form.
    """
    ntasks: int
    procid: int
    nodeid: int
    nnodes: int
    nodelist: str


def free_port() -> int:
    """A free TCP port of the loopback interface."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _int(env: Mapping[str, str], name: str) -> Optional[int]:
    value = env.get(name)
    if value is None or not str(value).strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise NodeSetupError(f'{name}={value!r}: expected an integer') from None


def _first(env: Mapping[str, str], *names: str) -> Tuple[Optional[str], Optional[str]]:
    """The first of ``names`` that is set (non-empty): (name, value)."""
    for name in names:
        if str(env.get(name, '')).strip():
            return name, env[name]
    return None, None


def under_torchrun(env: Mapping[str, str]) -> bool:
    """Whether this process is a worker torchrun started (it sets these variables)."""
    return 'TORCHELASTIC_RUN_ID' in env and 'LOCAL_RANK' in env and 'WORLD_SIZE' in env


def restarted_group_kwargs(env: Mapping[str, str] = os.environ) -> dict:
    """``init_process_group`` arguments that keep a restarted worker group off stale keys.

    torchrun's agent serves one TCPStore for the whole job, and torch 2.14 workers join it
    without a prefix per attempt (the agent's own comment assumes a new store for every
    retry, which the static and c10d rendezvous both reuse). After ``--max-restarts`` brings
    a group back, the previous attempt's process-group keys (gloo listening addresses, NCCL
    ids) are still there, and a new worker can read a dead worker's address (measured:
    ``Gloo connectFullMesh failed ... Connection refused``). The restart count torchrun
    gives every worker of an attempt names a fresh key space. Empty outside torchrun.
    """
    if not under_torchrun(env) or 'TORCHELASTIC_RESTART_COUNT' not in env:
        return {}
    import torch.distributed as dist

    store, rank, world_size = next(dist.rendezvous('env://'))
    attempt = env['TORCHELASTIC_RESTART_COUNT']
    return dict(store=dist.PrefixStore(f'mmseg_tao/attempt_{attempt}', store), rank=rank,
                world_size=world_size)


def slurm_task(env: Mapping[str, str]) -> Optional[SlurmTask]:
    """This process as a task of a SLURM step (``srun``), or None: not under SLURM, or in an
    interactive SLURM shell."""
    if 'SLURM_PROCID' not in env or 'SLURM_NTASKS' not in env:
        return None
    if env.get('SLURM_JOB_NAME') in _INTERACTIVE_JOBS:
        return None
    nnodes = _int(env, 'SLURM_NNODES') or _int(env, 'SLURM_JOB_NUM_NODES') or 1
    return SlurmTask(ntasks=_int(env, 'SLURM_NTASKS'), procid=_int(env, 'SLURM_PROCID'),
                     nodeid=_int(env, 'SLURM_NODEID') or 0, nnodes=nnodes,
                     nodelist=env.get('SLURM_NODELIST') or env.get('SLURM_JOB_NODELIST', ''))


def check_world_size(num_nodes: int, nproc: int, launcher: str,
                     env: Mapping[str, str]) -> None:
    """Inside a launched process: the launcher's process count must be the spec's.

    Args:
        num_nodes: ``train.num_nodes``.
        nproc: ``train.num_gpus`` (processes per node).
        launcher: ``pytorch`` (torchrun's ``WORLD_SIZE``) or ``slurm`` (``SLURM_NTASKS``).
        env: The environment.

    Raises:
        NodeSetupError: The counts disagree.
    """
    name = 'SLURM_NTASKS' if launcher == 'slurm' else 'WORLD_SIZE'
    world = _int(env, name)
    if world is not None and world != num_nodes * nproc:
        raise NodeSetupError(
            f'{name}={world} processes, but the spec asks for train.num_nodes {num_nodes} x '
            f'train.num_gpus {nproc} = {num_nodes * nproc}; start {nproc} process(es) on each '
            f'of {num_nodes} node(s), or change the spec')


def _check_tao_counts(num_nodes: int, nproc: int, env: Mapping[str, str]) -> None:
    """TAO 6/7's ``WORLD_SIZE`` (nodes) and ``NUM_GPU_PER_NODE`` against the spec."""
    nodes = _int(env, 'WORLD_SIZE')
    if nodes is not None and nodes != num_nodes:
        raise NodeSetupError(
            f'WORLD_SIZE={nodes} (for a TAO 6/7 launch: the number of nodes) but '
            f'train.num_nodes is {num_nodes}; set train.num_nodes={nodes}, or unset '
            'WORLD_SIZE')
    gpus = _int(env, 'NUM_GPU_PER_NODE')
    if gpus is not None and gpus != nproc:
        raise NodeSetupError(f'NUM_GPU_PER_NODE={gpus} but train.num_gpus is {nproc}; set '
                             f'train.num_gpus={gpus}, or unset NUM_GPU_PER_NODE')


def node_plan(num_nodes: int, nproc: int, env: Mapping[str, str]) -> NodePlan:
    """The torchrun plan of this node of a multi-node run, from the environment.

    Read, first found first: the node rank from ``NODE_RANK``, ``RANK`` (TAO 6/7) or
    ``PET_NODE_RANK`` (torchrun, TAO 5.5); the master from ``MASTER_ADDR`` /
    ``PET_MASTER_ADDR`` and ``MASTER_PORT`` / ``PET_MASTER_PORT``; or instead of these three a
    torchrun rendezvous ``PET_RDZV_ENDPOINT`` (``PET_RDZV_BACKEND``, default c10d;
    ``PET_RDZV_ID``). TAO 6/7's ``WORLD_SIZE`` (nodes) and ``NUM_GPU_PER_NODE``, when set,
    must equal the spec's counts.

    Args:
        num_nodes: ``train.num_nodes`` (above 1).
        nproc: ``train.num_gpus``.
        env: The environment.

    Raises:
        NodeSetupError: A variable is missing, malformed or disagrees with the spec.
    """
    _check_tao_counts(num_nodes, nproc, env)
    _, endpoint = _first(env, 'PET_RDZV_ENDPOINT')
    if endpoint:
        return NodePlan(num_nodes, nproc, node_rank=None, master_addr=None,
                        rdzv_endpoint=endpoint,
                        rdzv_backend=env.get('PET_RDZV_BACKEND') or 'c10d',
                        rdzv_id=env.get('PET_RDZV_ID') or None)
    rank_var, _ = _first(env, 'NODE_RANK', 'RANK', 'PET_NODE_RANK')
    addr_var, addr = _first(env, 'MASTER_ADDR', 'PET_MASTER_ADDR')
    port_var, _ = _first(env, 'MASTER_PORT', 'PET_MASTER_PORT')
    missing = [name for name, var in (('NODE_RANK', rank_var), ('MASTER_ADDR', addr_var),
                                      ('MASTER_PORT', port_var)) if var is None]
    if missing:
        raise NodeSetupError(
            f'train.num_nodes is {num_nodes}: a multi-node run needs MASTER_ADDR, '
            f'MASTER_PORT and NODE_RANK on every node (or a torchrun rendezvous '
            f'PET_RDZV_ENDPOINT); missing: {", ".join(missing)}')
    rank, port = _int(env, rank_var), _int(env, port_var)
    if not 0 <= rank < num_nodes:
        raise NodeSetupError(f'{rank_var}={rank}: expected a node rank in 0..{num_nodes - 1} '
                             f'(train.num_nodes is {num_nodes})')
    if not 1 <= port <= 65535:
        raise NodeSetupError(f'{port_var}={port}: expected a TCP port in 1..65535')
    return NodePlan(num_nodes, nproc, node_rank=rank, master_addr=addr, master_port=port)


def slurm_master(task: SlurmTask, env: Mapping[str, str]) -> str:
    """The master address of a SLURM run: ``MASTER_ADDR`` when set, else the first host of
    the allocation (``scontrol show hostnames``, as mmengine's slurm launcher)."""
    if env.get('MASTER_ADDR'):
        return env['MASTER_ADDR']
    out = subprocess.run(['scontrol', 'show', 'hostnames', task.nodelist],
                         capture_output=True, text=True, check=False).stdout.split()
    if not out:
        raise NodeSetupError(f'SLURM_NODELIST={task.nodelist!r}: scontrol named no host; '
                             'set MASTER_ADDR')
    return out[0]


def decide_launch(num_nodes: int, nproc: int, launcher: str,
                  env: Optional[Mapping[str, str]] = None
                  ) -> Tuple[str, Optional[NodePlan]]:
    """How ``train`` runs here: ``(launcher, plan)``.

    - ``('pytorch' | 'slurm' | 'mpi', None)``: this process is one of the run's (started by
      torchrun, or a SLURM task per process): train here with that launcher.
    - ``('torchrun', plan)``: start this node's processes under torchrun with ``plan``.
    - ``('none', None)``: one process, no process group.

    Args:
        num_nodes: ``train.num_nodes``.
        nproc: ``train.num_gpus`` (processes per node).
        launcher: The ``--launcher`` given (``none`` unless relaunched).
        env: The environment (default: ``os.environ``).

    Raises:
        NodeSetupError: See :func:`node_plan` and :func:`check_world_size`; under SLURM, a
            task count that is neither one per process nor one per node.
    """
    env = os.environ if env is None else env
    if launcher != 'none':
        check_world_size(num_nodes, nproc, launcher, env)
        return launcher, None
    if under_torchrun(env):  # torchrun ... -m mmseg_tao.cli train, without --launcher
        check_world_size(num_nodes, nproc, 'pytorch', env)
        return 'pytorch', None
    world = num_nodes * nproc
    task = slurm_task(env)
    if task is not None and not (task.ntasks == 1 and num_nodes == 1):
        if task.ntasks == world:
            return 'slurm', None
        if task.ntasks == num_nodes:  # one task per node: torchrun starts its processes
            port = _int(env, 'MASTER_PORT') or DEFAULT_PORT
            return 'torchrun', NodePlan(num_nodes, nproc, node_rank=task.nodeid,
                                        master_addr=slurm_master(task, env), master_port=port)
        raise NodeSetupError(
            f'SLURM_NTASKS={task.ntasks}, but the spec asks for train.num_nodes '
            f'{num_nodes} x train.num_gpus {nproc} = {world} processes; run srun with '
            f'--nodes={num_nodes} and --ntasks-per-node={nproc} (one task per process) '
            'or --ntasks-per-node=1 (one task per node)')
    if num_nodes > 1:
        return 'torchrun', node_plan(num_nodes, nproc, env)
    _check_tao_counts(num_nodes, nproc, env)
    if nproc > 1:
        return 'torchrun', NodePlan(1, nproc, master_port=free_port())
    return 'none', None
