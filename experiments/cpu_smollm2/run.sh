#!/usr/bin/env bash
# The CPU reproduction of the paper's Tables 2-4 in shape: SmolLM2-135M-Instruct on the bundled
# procedural-shop sessions, every row scored on the same first 200 steps of the test sessions.
# Choices and their reasons: README.md. Run from the repo root, with nothing else heavy on the machine:
#     bash experiments/cpu_smollm2/run.sh
# Every stage is skipped when its result exists and training resumes from its last checkpoint, so the
# script can be rerun after an interruption (or across sittings) and continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHOP_R1=.venv/bin/shop-r1
RUNS=experiments/cpu_smollm2/runs
# Train and eval build the same prompts: latest context, a 1,024-token window, 96 response tokens.
WINDOW=(--context latest --context-window 1024)
EVAL=(--sessions bundled:test --limit 200 --context latest --context-window 1024 --max-new-tokens 96 --seed 0)
SFT=(--max-examples 300 --epochs 1 --learning-rate 3e-4 --lora-rank 16)
GRPO=(--max-steps 60 --learning-rate 5e-5 --lora-rank 8 --probe-sessions bundled:test --probe-limit 24 --probe-every 15)

evaluate() {  # evaluate <policy> <out> [flags...]
  local policy=$1 out=$2; shift 2
  [ -f "$out/metrics.json" ] || "$SHOP_R1" eval --policy "$policy" "${EVAL[@]}" --out "$out" "$@"
}
train() {  # train <command> <out> [flags...]: fresh, or resumed when the run directory has begun
  local command=$1 out=$2; shift 2
  [ -f "$out/summary.json" ] && return 0
  if [ -f "$out/config.json" ]; then "$SHOP_R1" "$command" --preset cpu "${WINDOW[@]}" --out "$out" --resume "$@"
  else "$SHOP_R1" "$command" --preset cpu "${WINDOW[@]}" --out "$out" "$@"; fi
}

for baseline in oracle heuristic random terminate; do evaluate "$baseline" "$RUNS/$baseline"; done
train sft "$RUNS/sft" "${SFT[@]}"
evaluate "$RUNS/sft/model" "$RUNS/sft/eval"
# Shop-R1 first: with SFT it gives the two shipped policies (assets/policies/); the other rows follow.
train grpo "$RUNS/shop_r1" --model "$RUNS/sft/model" "${GRPO[@]}"
evaluate "$RUNS/shop_r1/model" "$RUNS/shop_r1/eval"
evaluate smollm2 "$RUNS/zero_shot"
evaluate smollm2 "$RUNS/zero_shot_constrained" --constrained  # the format forced by a grammar (agents/constrained.py)
train grpo "$RUNS/sft_rl_binary" --model "$RUNS/sft/model" --baseline rl_binary "${GRPO[@]}"
evaluate "$RUNS/sft_rl_binary/model" "$RUNS/sft_rl_binary/eval"
train grpo "$RUNS/no_dars" --model "$RUNS/sft/model" --ablation no_dars "${GRPO[@]}"
evaluate "$RUNS/no_dars/model" "$RUNS/no_dars/eval"
train grpo "$RUNS/no_rationale" --model "$RUNS/sft/model" --ablation no_rationale "${GRPO[@]}"
evaluate "$RUNS/no_rationale/model" "$RUNS/no_rationale/eval"
train grpo "$RUNS/rl_binary" --model smollm2 --baseline rl_binary "${GRPO[@]}"
evaluate "$RUNS/rl_binary/model" "$RUNS/rl_binary/eval"

"$SHOP_R1" compare --title "CPU reproduction: SmolLM2-135M-Instruct, bundled test sessions" --out experiments/cpu_smollm2/results \
  "Oracle (human actions)=$RUNS/oracle" "Heuristic=$RUNS/heuristic" "Random valid action=$RUNS/random" \
  "Terminate always=$RUNS/terminate" "Zero-shot prompting=$RUNS/zero_shot" \
  "Zero-shot, constrained decoding=$RUNS/zero_shot_constrained" "SFT=$RUNS/sft/eval" \
  "RL (Binary)=$RUNS/rl_binary" "SFT + RL (Binary)=$RUNS/sft_rl_binary" "Shop-R1=$RUNS/shop_r1" \
  "Shop-R1 w/o DARS=$RUNS/no_dars" "Shop-R1 w/o rationale reward=$RUNS/no_rationale"
