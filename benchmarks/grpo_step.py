"""Seconds per GRPO optimizer step: Shop-R1 with self-certainty, without it, and TRL's plain GRPOTrainer.

All three run the same batch: every timed step starts from the same weights with the same seed, so the
prompts and the sampled completions are identical (checked: the completion lengths must agree), and
they share the reward function (`ShopR1Reward`) and GRPOConfig. What differs:

- plain:       `trl.GRPOTrainer`, no subclass;
- without_sc:  `ShopR1GRPOTrainer` with alpha = 0 (nothing hooked, the no-rationale ablation);
- with_sc:     `ShopR1GRPOTrainer` with alpha = 0.005: KL(U || p) from the LM head at every decoding
               step, the rationale mask per completion, alpha * s in the reward.

A step is timed from `on_step_begin` to `on_step_end` (generation, reference forward, reward, loss,
backward, optimizer), rounds interleaved so machine noise hits every variant alike; the median is
reported. `--quick` uses the tiny random model (2 layers, SmolLM2's 49k vocabulary, so the per-token
self-certainty cost is the embedded model's while the model cost is nearly nil: the worst case for the
ratio); the full run uses the embedded SmolLM2-135M.

    python -m benchmarks --only grpo_step [--quick]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from transformers import TrainerCallback

VARIANTS = ("plain", "without_sc", "with_sc")


class _StepTimer(TrainerCallback):
    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)


class _LengthLog(TrainerCallback):
    """The mean completion length TRL logged, to check the variants sampled the same batch."""

    def __init__(self):
        self.lengths: list[float] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "completions/mean_length" in logs:
            self.lengths.append(logs["completions/mean_length"])


def _one_step(variant: str, model_name: str, rows: list[dict], config: Any, seed: int) -> tuple[float, float]:
    """Seconds of one optimizer step of `variant` from fresh weights, and its mean completion length."""
    import transformers
    from trl import GRPOTrainer

    from agents.models import load_model_and_tokenizer
    from training.data import to_dataset
    from training.grpo import ShopR1GRPOTrainer, ShopR1Reward, grpo_args
    from training.run_dir import RunDir

    transformers.set_seed(seed)
    model, tokenizer = load_model_and_tokenizer(model_name)
    timer, lengths = _StepTimer(), _LengthLog()
    with tempfile.TemporaryDirectory() as tmp:
        args = grpo_args(config, RunDir(tmp))
        args.seed = args.data_seed = seed
        args.save_strategy = "no"
        args.disable_tqdm = True
        common = dict(model=model, reward_funcs=[ShopR1Reward(config.reward)], args=args,
                      train_dataset=to_dataset(rows), processing_class=tokenizer, callbacks=[timer, lengths])
        if variant == "plain":
            trainer = GRPOTrainer(**common)
        else:
            trainer = ShopR1GRPOTrainer(**common, certainty_weight=config.reward.alpha if variant == "with_sc" else 0.0)
        trainer.train()
    return timer.seconds[0], lengths.lengths[0]


def run(quick: bool = False) -> dict:
    from agents.models import load_tokenizer
    from shop_env.loaders import bundled_sessions
    from training.data import PromptBudget, rl_rows, select_steps
    from training.grpo import GRPORunConfig

    model_name = "tiny-random" if quick else "smollm2"
    rounds = 1 if quick else 2  # quick: CI-sized, one round of each variant after the warm-up
    config = GRPORunConfig(
        model=model_name, max_steps=1, num_generations=4, prompts_per_step=1, micro_batch_size=4,
        max_context_tokens=1024 if quick else 1536, max_completion_tokens=32 if quick else 96, learning_rate=1e-6,
    )
    tokenizer = load_tokenizer(model_name)
    pairs = select_steps(bundled_sessions("train"), max_examples=8, seed=0)
    rows = rl_rows(pairs, tokenizer, PromptBudget(config.context, config.max_context_tokens, config.max_completion_tokens))
    _one_step("plain", model_name, rows, config, seed=0)  # warm-up: caches, allocator, lazy imports
    seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    lengths: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for round_index in range(rounds):
        for variant in VARIANTS:
            elapsed, length = _one_step(variant, model_name, rows, config, seed=round_index)
            seconds[variant].append(elapsed)
            lengths[variant].append(length)
    same_batch = all(lengths[v] == lengths["plain"] for v in VARIANTS)
    median = {variant: statistics.median(values) for variant, values in seconds.items()}
    return {
        "benchmark": "grpo_step",
        "ratios": {
            "plain_vs_with_sc": round(median["plain"] / median["with_sc"], 3),
            "plain_vs_without_sc": round(median["plain"] / median["without_sc"], 3),
        },
        "numbers": {
            **{f"{variant}_s_per_step": round(value, 3) for variant, value in median.items()},
            "self_certainty_overhead_s": round(median["with_sc"] - median["without_sc"], 3),
            "same_batch": same_batch,
            "completions_per_step": config.completions_per_step,
            "mean_completion_tokens": round(statistics.mean(lengths["plain"]), 1),
            "prompt_tokens_mean": round(statistics.mean(row["prompt_tokens"] for row in rows), 1),
            "rounds": rounds,
        },
        "model": model_name,
        "notes": (
            f"{model_name}; 1 prompt x {config.num_generations} completions of up to {config.max_completion_tokens} "
            "tokens per step, beta=0.001 (reference forward included); median of interleaved rounds, each step "
            "from fresh weights with the same seed across variants (same prompts and samples)."
        ),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
