"""LoRA against full fine-tuning: seconds per SFT optimizer step and peak memory, on the same batch.

Both variants run TRL's SFTTrainer as `shop-r1 sft` builds it (`training.sft.sft_args`, the prompts of
`training.data.sft_rows`) on the embedded SmolLM2-135M in float32, with the same seeded examples in the
same order (checked: the tokens TRL counts per step must agree). What differs:

- full: every weight trains (134.5M parameters, AdamW state for each);
- lora: rank-16 adapters on every attention and MLP projection (`--lora-rank 16`, alpha 32,
  training/lora.py), the base frozen.

Each variant runs in its own spawned interpreter, so its peak RSS (ru_maxrss: imports, model,
gradients, optimizer state, activations) is its own; `training_mb` is that peak minus the RSS right
after the model loaded, the memory training itself adds. A step is timed from `on_step_begin` to
`on_step_end` (forward + backward of every micro-batch, optimizer step); the first step (AdamW's state
is allocated there) is a warm-up and not timed. Rounds alternate the order of the two interpreters
(ABBA), and the speed ratio is the median of per-round ratios.

Full: the CPU preset's batch (4 examples of up to 1,024 tokens, micro-batch 1), 2 timed steps, 2
rounds. Quick: 1 example of up to 768 tokens per step, 1 timed step, 1 round.

    python -m benchmarks --only lora [--quick]
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import time
from importlib import metadata
from typing import Any

from transformers import TrainerCallback

from benchmarks import current_rss_mb, peak_rss_mb

MODEL = "smollm2"
VARIANTS = {"full": 0, "lora": 16}
"""Variant -> lora_rank."""


class _StepTimer(TrainerCallback):
    def __init__(self):
        self.seconds: list[float] = []
        self.tokens: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "num_tokens" in logs:
            self.tokens.append(logs["num_tokens"])


def _config(lora_rank: int, quick: bool) -> Any:
    from training.sft import SFTRunConfig

    batch = 1 if quick else 4
    steps = 2 if quick else 3  # the first is the warm-up
    return SFTRunConfig(
        model=MODEL, sessions="bundled:train", context_window=768 if quick else 1024, max_new_tokens=96,
        # twice the steps' examples: a few bundled steps do not fit a short window and are left out
        batch_size=batch, micro_batch_size=1, max_steps=steps, max_examples=2 * batch * steps, learning_rate=1e-4,
        lora_rank=lora_rank, seed=0,
    )


def _in_child(variant: str, quick: bool) -> dict[str, Any]:
    """One variant's training steps in this (fresh) interpreter."""
    os.dup2(2, 1)  # the runner's stdout carries only its JSON lines; the trainer's log prints go to stderr
    import torch
    import transformers
    from trl import SFTTrainer

    from agents.models import load_model_and_tokenizer
    from shop_env.loaders import bundled_sessions
    from training.data import select_steps, sft_rows, to_dataset
    from training.lora import lora_config
    from training.run_dir import RunDir
    from training.sft import sft_args

    config = _config(VARIANTS[variant], quick)
    transformers.set_seed(config.seed)
    model, tokenizer = load_model_and_tokenizer(config.model)
    loaded_mb = current_rss_mb()
    pairs = select_steps(bundled_sessions("train"), max_examples=config.max_examples, seed=config.seed)
    rows, _ = sft_rows(pairs, tokenizer, config.budget, skip_too_long=True)
    dataset = to_dataset([{"prompt": row["prompt"], "completion": row["completion"]} for row in rows])
    timer = _StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        args = sft_args(config, RunDir(tmp))
        args.save_strategy = "no"
        args.disable_tqdm = True
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[timer],
            peft_config=lora_config(config),
        )
        trainer.train()
    parameters = list(trainer.model.parameters())
    return {
        "step_seconds": timer.seconds[1:],
        "tokens_per_step": timer.tokens,
        "peak_rss_mb": peak_rss_mb(),
        "loaded_rss_mb": loaded_mb,
        "trainable_params": sum(p.numel() for p in parameters if p.requires_grad),
        "params": sum(p.numel() for p in parameters),
        "threads": torch.get_num_threads(),
    }


def _in_fresh_interpreter(variant: str, quick: bool) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_in_child, (variant, quick))


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 1 if quick else 2
    order = list(VARIANTS)
    results: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    for round_index in range(rounds):
        for variant in order if round_index % 2 == 0 else reversed(order):
            results[variant].append(_in_fresh_interpreter(variant, quick))
    seconds = {v: [statistics.median(r["step_seconds"]) for r in runs] for v, runs in results.items()}
    peak = {v: statistics.median(r["peak_rss_mb"] for r in runs) for v, runs in results.items()}
    training = {v: statistics.median(r["peak_rss_mb"] - r["loaded_rss_mb"] for r in runs) for v, runs in results.items()}
    tokens = {v: [r["tokens_per_step"] for r in runs] for v, runs in results.items()}
    full, lora = results["full"][0], results["lora"][0]
    config = _config(0, quick)
    return {
        "benchmark": "lora",
        "ratios": {
            "lora_speedup_vs_full": round(statistics.median(f / l for f, l in zip(seconds["full"], seconds["lora"], strict=True)), 3),
            "full_vs_lora_peak_rss": round(peak["full"] / peak["lora"], 3),
        },
        "numbers": {
            **{f"{variant}_s_per_step": round(statistics.median(values), 3) for variant, values in seconds.items()},
            **{f"{variant}_peak_rss_mb": round(value, 1) for variant, value in peak.items()},
            **{f"{variant}_training_mb": round(value, 1) for variant, value in training.items()},
            "full_trainable_params_m": round(full["trainable_params"] / 1e6, 2),
            "lora_trainable_params_m": round(lora["trainable_params"] / 1e6, 3),
            "same_batch": all(t == tokens["full"][0] for runs in tokens.values() for t in runs),
            "tokens_per_step": round(tokens["full"][0][-1] / config.max_steps, 1),  # TRL's num_tokens is cumulative
            "examples_per_step": config.batch_size,
            "timed_steps_per_round": len(full["step_seconds"]),
            "rounds": rounds,
            "threads": full["threads"],
        },
        "model": MODEL,
        "peft": metadata.version("peft"),
        "notes": (
            f"{MODEL} float32, TRL SFTTrainer, {config.batch_size} example(s) of up to {config.context_window} "
            "tokens per optimizer step (micro-batch 1); full fine-tuning vs LoRA rank 16 (alpha 32) on every "
            "attention and MLP projection, same seeded examples. Each variant in its own spawned interpreter "
            "(peak RSS = its ru_maxrss; training_mb = peak minus RSS after the model loaded); seconds per step "
            "from on_step_begin to on_step_end after one untimed warm-up step, median; speed ratio = median of "
            "per-round full / lora, rounds in ABBA order."
        ),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
