#!/usr/bin/env bash
# Shop-R1 SFT cold start on verl (paper: 4 epochs, lr 2e-5, global batch 64, 32k context, Qwen2.5-3B-Instruct).
#
# One node x 8 GPUs:
#   training/verl/scripts/sft.sh --data data/verl
# Several nodes (torchrun; run on every node, node 0's address as --master-addr):
#   training/verl/scripts/sft.sh --data data/verl --nnodes 2 --node-rank 0 --master-addr 10.0.0.1   # node 0
#   training/verl/scripts/sft.sh --data data/verl --nnodes 2 --node-rank 1 --master-addr 10.0.0.1   # node 1
# Add --dry-run to print the command; Hydra overrides go after `--`.
# The model lands in checkpoints/shop_r1/sft/global_step_<N>/huggingface (GRPO's --sft-model).
set -euo pipefail
exec "${PYTHON:-python3}" -m training.verl.launch sft "$@"
