"""`shop-r1 train`: SFT cold start, then Shop-R1 GRPO from the SFT model, then evaluation on held-out steps.

    <out>/sft/     the SFT run (skipped with --no-sft / --ablation no_sft: GRPO starts from the base model)
    <out>/grpo/    the GRPO run, starting from <out>/sft/model
    <out>/eval/    metrics.json + report.md of the final model (`agents.evaluate`)

A stage whose summary.json exists is done and is not run again, so `--resume` after an interruption
continues inside the unfinished stage (from its last checkpoint) and skips the finished ones. Results
never mix configs: a new run (no --resume) refuses a directory that holds any stage's results, and
--resume refuses another config than the recorded one (only --max-steps may change, and only while
the stages it changes are unfinished), so the numbers printed at the end are always this config's.

    shop-r1 train --preset cpu --out runs/shop_r1
    shop-r1 train --preset cpu --max-steps 2 --out /tmp/smoke       # caps the steps of both stages
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from shop_env.atomic_io import write_json
from shop_env.preflight import config_changes
from training.grpo import GRPORunConfig, run_grpo
from training.run_dir import CONFIG_FILE, NOTHING_TO_DO, SUMMARY_FILE, RunDir, config_dict
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
    eval_sessions: str = "bundled:test"
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


def holds_results(stage_dir: str | Path) -> bool:
    """Whether a stage directory holds anything a run made: a summary, metrics (eval's too) or a checkpoint."""
    path = Path(stage_dir)
    return path.is_dir() and (RunDir(path).holds_run() or (path / "metrics.json").exists())


def run_train(config: TrainRunConfig, *, resume: bool = False) -> dict[str, Any]:
    """Run the stages that are not done yet; returns {stage: summary} (also <out>/summary.json).

    Everything that would put two configs' results side by side is refused before anything runs (see
    the module docstring); a run already finished with this config returns its summary with a
    NOTHING_TO_DO message.
    """
    root = RunDir(config.out)
    data = config_dict(config)
    stages = _stages(config, root.path, resume)
    if not resume:
        held = [name for name, path, _, _ in stages if holds_results(path)]
        if held or stage_done(root.path):
            raise FileExistsError(f"{root.path} already holds a train run ({', '.join(held) or SUMMARY_FILE}); pass "
                                  "--resume to continue it or choose another --out")
    else:
        previous = root.refuse_other_config(data, may_change=("sft.max_steps", "grpo.max_steps"))
        if stage_done(root.path) and previous == data:
            summary = json.loads((root.path / SUMMARY_FILE).read_text(encoding="utf-8"))
            return {**summary, NOTHING_TO_DO: f"{root.path} already finished this run; nothing to do"}
    pending = _pending(stages)
    _check_inputs(config, pending)
    write_json(root.path / CONFIG_FILE, data)
    results: dict[str, Any] = {}
    for name, path, _, run in stages:
        if name in pending:
            results[name] = run()
        else:
            logger.info("%s is done (summary.json exists); skipping it", path)
            results[name] = json.loads((path / SUMMARY_FILE).read_text(encoding="utf-8"))
    write_json(root.path / SUMMARY_FILE, results)
    return results


def _stages(config: TrainRunConfig, root: Path, resume: bool) -> list[tuple[str, Path, Any, Callable[[], dict]]]:
    """(name, directory, the stage's own config or None, run) of each stage, in order."""
    evaluate = partial(
        evaluate_model, str(Path(config.grpo.out) / "model"), root / "eval", sessions=config.eval_sessions,
        context=config.eval_context or config.grpo.context, limit=config.eval_limit,
        context_window=config.grpo.context_window, max_new_tokens=config.grpo.max_new_tokens,
        seed=config.grpo.seed,
    )
    stages = [] if config.skip_sft else [("sft", Path(config.sft.out), config.sft, partial(run_sft, config.sft, resume=resume))]
    stages.append(("grpo", Path(config.grpo.out), config.grpo, partial(run_grpo, config.grpo, resume=resume)))
    stages.append(("eval", root / "eval", None, evaluate))  # its settings are the root config's
    return stages


def _pending(stages: list[tuple[str, Path, Any, Callable[[], dict]]]) -> list[str]:
    """The stages still to run; refuses a finished stage whose config changed and results after a pending stage.

    Each stage builds on the one before (GRPO starts from the SFT model, eval scores the GRPO model),
    so a stage that has to run again would leave every later stage's results stale.
    """
    pending: list[str] = []
    for name, path, stage_config, _ in stages:
        if pending:
            if holds_results(path):
                raise ValueError(f"{path} holds results built on the unfinished {pending[0]} stage, which would leave "
                                 "them stale; start a new --out")
            pending.append(name)
        elif not stage_done(path):
            pending.append(name)
        elif stage_config is not None:
            recorded_path = path / CONFIG_FILE
            recorded = json.loads(recorded_path.read_text(encoding="utf-8")) if recorded_path.exists() else {}
            changes = config_changes(recorded, config_dict(stage_config))
            if changes:
                raise ValueError(f"{path} finished with another config ({'; '.join(changes)}) and the later stages build "
                                 "on it; resume with the flags it ran with or start a new --out")
    return pending


def _check_inputs(config: TrainRunConfig, pending: list[str]) -> None:
    """Load the sessions of the pending stages after the first (which loads its own before its model), so a
    missing or malformed --eval-sessions fails now and not after the training stages have run."""
    from shop_env.loaders import resolve_sessions

    data = {"sft": config.sft.sessions, "grpo": config.grpo.sessions, "eval": config.eval_sessions}
    checked = {data[pending[0]]} if pending else set()
    for name in pending[1:]:
        if data[name] not in checked:
            resolve_sessions(data[name])
            checked.add(data[name])


def evaluate_model(
    model: str, out: str | Path, *, sessions: str, context: str, limit: int | None, context_window: int,
    max_new_tokens: int, seed: int,
) -> dict[str, Any]:
    """Evaluate `model` with the agent's evaluator (`shop-r1 eval`), prompts built as in training.

    Sampling at the paper's temperature 0.6, seeded; writes metrics.json, predictions.jsonl, report.md
    and a summary.json with the headline numbers into `out`.
    """
    from agents.evaluate import EvalConfig, run_eval

    out = Path(out)
    metrics = run_eval(EvalConfig(
        policy=model, sessions=sessions, out=out, context=context, limit=limit, context_window=context_window,
        max_new_tokens=max_new_tokens, seed=seed,
    ))
    summary = {key: metrics[key] for key in ("exact_acc", "type_acc", "type_macro_f1")}
    summary.update(stage="eval", model=model, sessions=sessions, limit=limit, report=str(out / "report.md"))
    write_json(out / SUMMARY_FILE, summary)
    return summary
