#!/usr/bin/env bash
# The CPU experiment: zero-shot vs SFT vs SFT + GRPO (Shop-R1) vs SFT + GRPO (binary) on the embedded
# SmolLM2-135M with the bundled procedural-shop sessions. Budgets: see README.md. Run from the repo root:
#     nice bash experiments/cpu_smollm2/run.sh
# Each stage is skipped when its result exists, so the script can be rerun after an interruption
# (training stages resume from their last checkpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHOP_R1=.venv/bin/shop-r1
RUNS=experiments/cpu_smollm2/runs
EVAL=(--sessions bundled:test --limit 8 --max-tokens 1024 --max-new-tokens 96 --context whole --seed 0)

evaluate() {  # evaluate <policy> <out>
  [ -f "$2/metrics.json" ] || "$SHOP_R1" eval --policy "$1" "${EVAL[@]}" --out "$2"
}
train() {  # train <command> <out> [flags...]: fresh, or resumed when the run directory has checkpoints
  local command=$1 out=$2; shift 2
  [ -f "$out/summary.json" ] && return 0
  if [ -d "$out/checkpoints" ]; then "$SHOP_R1" "$command" --preset cpu --out "$out" --resume "$@"
  else "$SHOP_R1" "$command" --preset cpu --out "$out" "$@"; fi
}

# Budgets far below the cpu preset's (SFT 16 examples instead of 48, GRPO 1 step instead of 8, 8 test
# steps): what fit between 02:40 and 04:15 UTC on a 2-core CPU shared with four other jobs (load
# average 7-10; an SFT step of 4 examples took 8 minutes; a first zero-shot evaluation of 30 steps ran
# for over an hour and then stopped on a step whose action history alone exceeds the 1,024-token window).
evaluate smollm2 "$RUNS/zero_shot/eval" &
train sft "$RUNS/sft" --max-examples 16
wait
# The SFT evaluation and the two GRPO runs (both from the same SFT model) run side by side on a shared CPU.
evaluate "$RUNS/sft/model" "$RUNS/sft/eval" &
( train grpo "$RUNS/grpo_shop_r1" --model "$RUNS/sft/model" --max-steps 1 && evaluate "$RUNS/grpo_shop_r1/model" "$RUNS/grpo_shop_r1/eval" ) &
( train grpo "$RUNS/grpo_binary" --model "$RUNS/sft/model" --baseline rl_binary --max-steps 1 && evaluate "$RUNS/grpo_binary/model" "$RUNS/grpo_binary/eval" ) &
wait
.venv/bin/python -m experiments.cpu_smollm2.report
