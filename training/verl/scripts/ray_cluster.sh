#!/usr/bin/env bash
# Start the Ray cluster a multi-node GRPO run joins: `ray_cluster.sh head` on the head node, then
# `ray_cluster.sh worker HEAD_ADDRESS` on every other node; `ray status` on the head should list all GPUs.
# Every node needs the same Python environment with shop-r1 installed (`pip install -e ".[gpu]"`), the
# data directory and the models at the same paths (a shared file system, or copies).
# The worker processes import training.verl.self_certainty (VERL_USE_EXTERNAL_MODULES): exported here
# too, so processes Ray starts outside verl's runtime env see it as well.
set -euo pipefail
export VERL_USE_EXTERNAL_MODULES=training.verl.self_certainty
PORT="${RAY_PORT:-6379}"
case "${1:-}" in
  head) exec ray start --head --port="$PORT" --num-gpus="${GPUS_PER_NODE:-8}" ;;
  worker) exec ray start --address="${2:?usage: ray_cluster.sh worker HEAD_ADDRESS}:$PORT" --num-gpus="${GPUS_PER_NODE:-8}" ;;
  *) echo "usage: ray_cluster.sh head | ray_cluster.sh worker HEAD_ADDRESS" >&2; exit 2 ;;
esac
