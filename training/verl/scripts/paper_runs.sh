#!/usr/bin/env bash
# Every verl run of the paper's Tables 2 and 4, one after another, on one node x 8 GPUs (or the Ray
# cluster given by NNODES): data prep, SFT, then GRPO for Shop-R1, the baselines and the ablations.
#   SESSIONS=data/opera_train.jsonl VAL_SESSIONS=data/opera_test.jsonl training/verl/scripts/paper_runs.sh
# Evaluate each result with `shop-r1 eval --policy checkpoints/shop_r1/<variant>/...` afterwards.
set -euo pipefail
PY="${PYTHON:-python3}"
DATA="${DATA:-data/verl}"
NNODES="${NNODES:-1}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

shop-r1 prepare-verl --sessions "${SESSIONS:?set SESSIONS}" --val-sessions "${VAL_SESSIONS:?set VAL_SESSIONS}" \
    --model Qwen/Qwen2.5-3B-Instruct --out "$DATA" --workers "${PREP_WORKERS:-16}"
"$HERE/sft.sh" --data "$DATA"
SFT_MODEL="$(ls -d checkpoints/shop_r1/sft/global_step_*/huggingface | sort -V | tail -n 1)"
for variant in $("$PY" -c "from training.verl.launch import VARIANTS; print(' '.join(VARIANTS))"); do
  "$HERE/grpo.sh" --variant "$variant" --data "$DATA" --sft-model "$SFT_MODEL" --nnodes "$NNODES"
done
