"""`shop-r1 train`: SFT cold start, then Shop-R1 GRPO from the SFT model, then evaluation on held-out steps.

    <out>/sft/     the SFT run (skipped with --no-sft / --ablation no_sft: GRPO starts from the base model)
    <out>/grpo/    the GRPO run, starting from <out>/sft/model
    <out>/eval/    metrics.json + report.md of the final model (`agents.evaluate`)

A stage whose summary.json exists is done and is not run again, so `--resume` after an interruption
continues inside the unfinished stage (from its last checkpoint) and skips the finished ones.

    shop-r1 train --preset cpu --out runs/shop_r1
    shop-r1 train --preset cpu --max-steps 2 --out /tmp/smoke       # caps the steps of both stages
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shop_env.atomic_io import write_json
from training.grpo import GRPORunConfig, run_grpo
from training.run_dir import SUMMARY_FILE, RunDir
from training.sft import SFTRunConfig, run_sft

logger = logging.getLogger(__name__)


@dataclass
class TrainRunConfig:
    """SFT then GRPO then evaluation; each stage keeps its own config, the run directory ties them."""

    out: str = "runs/train"
    """Run directory; the stages write into sft/, grpo/ and eval/ under it."""
    sft: SFTRunConfig = field(default_factory=SFTRunConfig)
    """The SFT stage (its `out` is set to <out>/sft)."""
    grpo: GRPORunConfig = field(default_factory=GRPORunConfig)
    """The GRPO stage (its `out` is set to <out>/grpo, its `model` to the SFT model unless skip_sft)."""
    skip_sft: bool = False
    """Start GRPO from the base model (Table 4 'no SFT', Table 2 'RL (binary)')."""
    eval_data: str = "bundled:test"
    """Sessions to evaluate on (held out)."""
    eval_limit: int | None = None
    """Evaluate the first N steps of the held-out sessions, a fixed subset (None: all of them)."""
    eval_context: str | None = None
    """Context for evaluation; None: the same as training (the GRPO stage's)."""

    def __post_init__(self):
        if isinstance(self.sft, dict):
            self.sft = SFTRunConfig(**self.sft)
        if isinstance(self.grpo, dict):
            self.grpo = GRPORunConfig(**self.grpo)
        root = Path(self.out)
        self.sft = replace(self.sft, out=str(root / "sft"))
        grpo_model = self.grpo.model if self.skip_sft else str(root / "sft" / "model")
        self.grpo = replace(self.grpo, out=str(root / "grpo"), model=grpo_model)
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ValueError(f"eval_limit must be >= 1 or None, got {self.eval_limit}")


def stage_done(stage_dir: str | Path) -> bool:
    return (Path(stage_dir) / SUMMARY_FILE).exists()


def run_train(config: TrainRunConfig, *, resume: bool = False) -> dict[str, Any]:
    """Run the stages that are not done yet; returns {stage: summary} (also <out>/summary.json)."""
    root = RunDir(config.out)
    root.record_config(config, resuming=resume, may_change=("sft", "grpo"))  # each stage checks its own
    results: dict[str, Any] = {}
    if not config.skip_sft:
        results["sft"] = _stage(config.sft.out, lambda: run_sft(config.sft, resume=resume))
    results["grpo"] = _stage(config.grpo.out, lambda: run_grpo(config.grpo, resume=resume))
    results["eval"] = _stage(
        root.path / "eval",
        lambda: evaluate_model(
            str(Path(config.grpo.out) / "model"), root.path / "eval", data=config.eval_data,
            context=config.eval_context or config.grpo.context, limit=config.eval_limit,
            max_context_tokens=config.grpo.max_context_tokens, max_new_tokens=config.grpo.max_completion_tokens,
            seed=config.grpo.seed,
        ),
    )
    write_json(root.path / SUMMARY_FILE, results)
    return results


def _stage(stage_dir: str | Path, run) -> dict[str, Any]:
    if stage_done(stage_dir):
        logger.info("%s is done (summary.json exists); skipping it", stage_dir)
        return json.loads((Path(stage_dir) / SUMMARY_FILE).read_text(encoding="utf-8"))
    return run()


def evaluate_model(
    model: str, out: str | Path, *, data: str, context: str, limit: int | None, max_context_tokens: int,
    max_new_tokens: int, seed: int,
) -> dict[str, Any]:
    """Evaluate `model` with the agent's evaluator (`shop-r1 eval`), prompts built as in training.

    Sampling at the paper's temperature 0.6, seeded; writes metrics.json, predictions.jsonl, report.md
    and a summary.json with the headline numbers into `out`.
    """
    from agents.evaluate import EvalConfig, run_eval

    out = Path(out)
    metrics = run_eval(EvalConfig(
        policy=model, sessions=data, out=out, context=context, limit=limit, max_tokens=max_context_tokens,
        max_new_tokens=max_new_tokens, seed=seed,
    ))
    summary = {key: metrics[key] for key in ("exact_acc", "type_acc", "type_macro_f1")}
    summary.update(stage="eval", model=model, data=data, limit=limit, report=str(out / "report.md"))
    write_json(out / SUMMARY_FILE, summary)
    return summary
