#!/usr/bin/env bash
# Shop-R1 GRPO on verl (paper: 500 steps, lr 1e-7, 8 prompts x 8 samples = 64 sequences per step,
# temperature 0.6, KL loss 0.001, 32k context), with the rationale self-certainty added before GRPO.
#
# One node x 8 GPUs (verl starts a local Ray cluster):
#   training/verl/scripts/grpo.sh --data data/verl --sft-model checkpoints/shop_r1/sft/global_step_N/huggingface
# Several nodes: start Ray on every node first (scripts/ray_cluster.sh), then on the head node:
#   training/verl/scripts/grpo.sh --nnodes 4 --data data/verl --sft-model ...
# A baseline or ablation of the paper's tables (scripts/paper_runs.sh runs them all):
#   training/verl/scripts/grpo.sh --variant no_dars --data data/verl --sft-model ...
# Add --dry-run to print the command; Hydra overrides go after `--`.
set -euo pipefail
exec "${PYTHON:-python3}" -m training.verl.launch grpo "$@"
