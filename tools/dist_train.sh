#!/usr/bin/env bash
# Train with several processes: bash tools/dist_train.sh CONFIG NPROC [train.py args...]
# Works without a GPU (gloo); set NNODES / NODE_RANK / MASTER_ADDR / PORT for several nodes.
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
PYTHONPATH="$(dirname "$0")/..:${PYTHONPATH:-}" \
python -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
  --nproc_per_node="$NPROC" "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"
