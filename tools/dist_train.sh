#!/usr/bin/env bash
# Train with several processes (mmseg's tools/dist_train.sh), on this node of NNODES:
#   [NNODES=1] [NODE_RANK=0] [MASTER_ADDR=127.0.0.1] [PORT=29500] [MAX_RESTARTS=0] \
#     bash tools/dist_train.sh CONFIG_OR_SPEC NPROC [args...]
# A config (.py) runs tools/train.py under torchrun (--launcher pytorch); a TAO spec
# (.yaml) runs `mmseg-tao train -e SPEC train.num_nodes=NNODES train.num_gpus=NPROC args...`,
# which starts torchrun itself. Works without a GPU (gloo). Run it on every node with the
# same MASTER_ADDR / PORT and that node's NODE_RANK; MAX_RESTARTS is torchrun's
# --max-restarts (each restart resumes from the newest complete checkpoint).
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
export NNODES=${NNODES:-1}
export NODE_RANK=${NODE_RANK:-0}
export MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
export MASTER_PORT=${PORT:-${MASTER_PORT:-29500}}
export PET_MAX_RESTARTS=${MAX_RESTARTS:-${PET_MAX_RESTARTS:-0}}
export PYTHONPATH="$(dirname "$0")/..:${PYTHONPATH:-}"
case "$CONFIG" in
  *.yaml|*.yml)
    exec python -m mmseg_tao.cli train -e "$CONFIG" "train.num_nodes=$NNODES" \
      "train.num_gpus=$NPROC" "$@" ;;
  *)
    exec python -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
      --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" \
      --max_restarts="$PET_MAX_RESTARTS" --nproc_per_node="$NPROC" \
      "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@" ;;
esac
