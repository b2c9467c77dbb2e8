#!/usr/bin/env bash
# Train on a SLURM cluster, one task per process (mmseg's tools/slurm_train.sh):
#   [GPUS=4] [GPUS_PER_NODE=4] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#     bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG_OR_SPEC [args...]
# A TAO spec (.yaml) runs `mmseg-tao train -e SPEC train.num_nodes=N train.num_gpus=G args...`
# in every task (ranks and master from SLURM, mmengine's slurm launcher); a config (.py)
# runs tools/train.py --launcher slurm. A run preempted by SIGTERM / SIGUSR1 (e.g.
# sbatch --signal=USR1@120) ends with status 75 after a checkpoint of its last iteration;
# inside a batch job the job is then requeued, and its next start resumes from that
# checkpoint. The results dir must be on a file system all nodes share.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PER_NODE=$(( GPUS < GPUS_PER_NODE ? GPUS : GPUS_PER_NODE ))
NNODES=$(( (GPUS + PER_NODE - 1) / PER_NODE ))
PREEMPTED=75
case "$CONFIG" in
  *.yaml|*.yml)
    CMD=(python -u -m mmseg_tao.cli train -e "$CONFIG" "train.num_nodes=$NNODES"
         "train.num_gpus=$PER_NODE" "$@") ;;
  *)
    CMD=(python -u "$(dirname "$0")/train.py" "$CONFIG" --launcher=slurm "$@") ;;
esac
PYTHONPATH="$(dirname "$0")/..:${PYTHONPATH:-}" \
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$PER_NODE" --nodes="$NNODES" \
  --ntasks="$GPUS" --ntasks-per-node="$PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
  --kill-on-bad-exit=1 $SRUN_ARGS "${CMD[@]}"
rc=$?
if [ "$rc" -eq "$PREEMPTED" ] && [ -n "${SLURM_JOB_ID:-}" ]; then
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$rc"
