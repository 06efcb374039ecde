"""Seconds and memory per GRPO optimizer step: Shop-R1's shared-prefix trainer against TRL's plain GRPOTrainer.

Every variant runs the same batch: each timed step starts from the same weights with the same seed, so the
prompts are identical and the samples too (the shared-prefix rollout samples exactly as `generate` does;
checked: the completion lengths must agree), with the same reward function (`ShopR1Reward`) and GRPOConfig:

- plain_trl:      `trl.GRPOTrainer`, no subclass: the prompt repeated G times in the rollout, the loss and
                  the reference pass (the baseline);
- ours_plain:     `ShopR1GRPOTrainer(shared_prefix=False)` with self-certainty (alpha = 0.005): TRL's path
                  plus the LM-head hook, to show what self-certainty costs;
- ours:           `ShopR1GRPOTrainer` as `shop-r1 grpo` runs it: shared prefix, self-certainty.

A step is timed from `on_step_begin` to `on_step_end` (generation, reference forward, reward, loss,
backward, optimizer). Each step runs in a fresh interpreter (spawn), so its peak RSS is its own; rounds
are interleaved so machine noise hits every variant alike, and the median is reported. Full mode: the
embedded SmolLM2-135M, G = 4, one ~1k-token prompt, 64 new tokens. `--quick`: the tiny random model
(2 layers, SmolLM2's 49k vocabulary), the same prompt, 32 new tokens.

    python -m benchmarks --only grpo_step [--quick]
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from typing import Any

VARIANTS = ("plain_trl", "ours_plain", "ours")


def _config(quick: bool):
    from training.grpo import GRPORunConfig

    new_tokens = 32 if quick else 64
    return GRPORunConfig(
        model="tiny-random" if quick else "smollm2", max_steps=1, num_generations=4, prompts_per_step=1,
        micro_batch_size=4, context_window=1024 + new_tokens, max_new_tokens=new_tokens, learning_rate=1e-6,
    )


def _rows(config) -> list[dict]:
    from agents.models import load_tokenizer
    from shop_env.loaders import bundled_sessions
    from training.data import rl_rows, select_steps

    tokenizer = load_tokenizer(config.model)
    pairs = select_steps(bundled_sessions("train"), max_examples=64, seed=0)
    rows = rl_rows(pairs, tokenizer, config.budget, skip_too_long=True)
    return [max(rows, key=lambda row: row["prompt_tokens"])]  # the longest prompt that fits: ~1k tokens


def _one_step(variant: str, config, rows: list[dict], seed: int) -> dict[str, float]:
    """One optimizer step of `variant` on `rows` from fresh weights: seconds, mean completion length, peak RSS."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import transformers
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from agents.models import load_model_and_tokenizer
    from benchmarks import peak_rss_mb
    from training.data import to_dataset
    from training.grpo import ShopR1GRPOTrainer, ShopR1Reward, grpo_args
    from training.run_dir import RunDir

    class Probe(TrainerCallback):
        def __init__(self):
            self.seconds, self.length, self._start = 0.0, 0.0, 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self._start

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "completions/mean_length" in logs:
                self.length = logs["completions/mean_length"]

    transformers.set_seed(seed)
    model, tokenizer = load_model_and_tokenizer(config.model)
    loaded_rss = peak_rss_mb()
    probe = Probe()
    with tempfile.TemporaryDirectory() as tmp:
        args = grpo_args(config, RunDir(tmp))
        args.seed = args.data_seed = seed
        args.save_strategy = "no"
        args.disable_tqdm = True
        common = dict(model=model, reward_funcs=[ShopR1Reward(config.reward)], args=args,
                      train_dataset=to_dataset(rows), processing_class=tokenizer, callbacks=[probe])
        if variant == "plain_trl":
            trainer = GRPOTrainer(**common)
        else:
            trainer = ShopR1GRPOTrainer(**common, certainty_weight=config.reward.alpha, shared_prefix=variant == "ours")
        trainer.train()
    return {"seconds": probe.seconds, "length": probe.length, "peak_rss_mb": peak_rss_mb(),
            "loaded_rss_mb": loaded_rss, "prompt_tokens": rows[0]["prompt_tokens"]}


def in_fresh_process(variant: str, config, rows: list[dict], seed: int) -> dict[str, float]:
    """`_one_step` in a spawned interpreter, so that its peak RSS is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_one_step, (variant, config, rows, seed))


def run(quick: bool = False) -> dict[str, Any]:
    config = _config(quick)
    rows = _rows(config)
    rounds = 1 if quick else 2
    in_fresh_process("ours", config, rows, seed=0)  # warm-up: the model cache, the page cache
    steps: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for round_index in range(rounds):
        order = VARIANTS if round_index % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            steps[variant].append(in_fresh_process(variant, config, rows, seed=round_index))
    seconds = {variant: statistics.median(step["seconds"] for step in runs) for variant, runs in steps.items()}
    rss = {variant: max(step["peak_rss_mb"] for step in runs) for variant, runs in steps.items()}
    lengths = {variant: [step["length"] for step in runs] for variant, runs in steps.items()}
    return {
        "benchmark": "grpo_step",
        "ratios": {
            "shared_prefix_vs_plain_trl": round(seconds["plain_trl"] / seconds["ours"], 3),
            "plain_trl_vs_ours_plain": round(seconds["plain_trl"] / seconds["ours_plain"], 3),
            "rss_ours_vs_plain_trl": round(rss["ours"] / rss["plain_trl"], 3),
        },
        "targets": {"shared_prefix_vs_plain_trl": 2.5},
        "numbers": {
            **{f"{variant}_s_per_step": round(value, 2) for variant, value in seconds.items()},
            **{f"{variant}_peak_rss_mb": round(value) for variant, value in rss.items()},
            "model_loaded_rss_mb": round(statistics.median(s["loaded_rss_mb"] for s in steps["ours"])),
            "same_batch": all(lengths[v] == lengths["plain_trl"] for v in VARIANTS),
            "completions_per_step": config.completions_per_step,
            "mean_completion_tokens": round(statistics.mean(lengths["plain_trl"]), 1),
            "prompt_tokens": steps["ours"][0]["prompt_tokens"],
            "rounds": rounds,
        },
        "model": config.model,
        "notes": (
            f"{config.model}; one prompt of {steps['ours'][0]['prompt_tokens']} tokens x G={config.num_generations} "
            f"completions of up to {config.max_new_tokens} tokens, micro-batch = the group, beta=0.001 "
            "(reference forward included), alpha=0.005 for ours; each step in a fresh process from the same "
            "weights and seed (same prompt and samples), median of interleaved rounds; peak RSS of the step's process."
        ),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
