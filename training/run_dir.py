"""The run directory: the exact config, per-step metrics, TensorBoard, plots and checkpoints of one run.

    <out>/config.json       the resolved config (preset + flags), written before training starts
    <out>/metrics.jsonl     one JSON object per optimizer step: `step`, every reward component, KL, loss
    <out>/tensorboard/      the same scalars for TensorBoard (`tensorboard --logdir <out>`)
    <out>/checkpoints/      HF Trainer checkpoints (`checkpoint-<step>`), resumable with `--resume`
    <out>/model/            the final weights and tokenizer (loadable by `--model <out>/model`); for a
                            `--lora-rank` run only the adapter (adapter_config.json, adapter_model.safetensors)
    <out>/plots/*.png       reward components and KL against step, drawn at the end
    <out>/summary.json      runtime and final numbers

metrics.jsonl is append-only with an fsync per line; on resume the lines past the checkpoint's step are
dropped first, so an interrupted and resumed run has each step exactly once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from shop_env.atomic_io import append_jsonl, atomic_write, read_jsonl_records, write_json, write_text

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")

# TRL's names for the scalars we keep, mapped to the project's namespaced ones (STYLE: `reward/...`).
_RENAMES = {
    "kl": "kl",
    "loss": "loss",
    "grad_norm": "grad_norm",
    "learning_rate": "learning_rate",
    "reward": None,  # TRL's total: the same number as our reward/total
    "reward_std": "reward/total_std",
    "entropy": "policy/entropy",
    "mean_token_accuracy": "sft/mean_token_accuracy",
    "num_tokens": "num_tokens",
    "completions/mean_length": "completions/mean_length",
    "completions/clipped_ratio": "completions/clipped_ratio",
    "frac_reward_zero_std": "reward/frac_zero_std",
    "step_time": "time/step_seconds",
    "epoch": "epoch",
}


class RunDir:
    """Paths of one run and the helpers that write into it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    def record_config(self, config: Any, *, resuming: bool, may_change: tuple[str, ...] = ("max_steps",)) -> Path:
        """Write config.json; when resuming, refuse a config that differs in more than `may_change`.

        A resumed run with another learning rate or reward would not be the run its checkpoint belongs to.
        """
        data = json.loads(json.dumps(dataclasses.asdict(config)))
        previous_path = self.path / CONFIG_FILE
        if resuming and previous_path.exists():
            previous = json.loads(previous_path.read_text(encoding="utf-8"))
            changed = sorted(k for k in set(data) | set(previous) if k not in may_change and data.get(k) != previous.get(k))
            if changed:
                details = "; ".join(f"{k}: {previous.get(k)!r} -> {data.get(k)!r}" for k in changed)
                raise ValueError(f"--resume with a different config than {previous_path} ({details}); "
                                 "resume with the same flags or start a new --out")
        return write_json(previous_path, data)

    def write_summary(self, summary: dict) -> Path:
        return write_json(self.path / SUMMARY_FILE, summary)

    def last_checkpoint(self) -> Path | None:
        """The complete checkpoint with the highest step, or None when the run has none yet.

        The HF Trainer writes trainer_state.json last and not atomically, so a checkpoint whose state
        is missing or does not parse was cut short by a kill and is passed over.
        """
        found = []
        if self.checkpoints.is_dir():
            for child in self.checkpoints.iterdir():
                match = CHECKPOINT_PATTERN.match(child.name)
                if match and child.is_dir() and is_complete_checkpoint(child):
                    found.append((int(match.group(1)), child))
        return max(found)[1] if found else None

    def prepare_resume(self, resume: bool) -> Path | None:
        """The checkpoint to resume from (None: start fresh), with metrics.jsonl cut back to its step.

        A fresh start in a directory that already holds metrics or checkpoints is refused, so a run
        never mixes two runs' steps; pass --resume to continue or choose another --out.
        """
        checkpoint = self.last_checkpoint()
        if not resume:
            if checkpoint is not None or read_jsonl_records(self.metrics):
                raise FileExistsError(
                    f"{self.path} already holds a run (metrics or checkpoints); pass --resume to continue it "
                    "or choose another --out"
                )
            return None
        if checkpoint is None:
            return None
        step = checkpoint_step(checkpoint)
        kept = [record for record in read_jsonl_records(self.metrics) if record.get("step", 0) <= step]
        write_text(self.metrics, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in kept))
        return checkpoint


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint was saved at, from its trainer_state.json."""
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])


def is_complete_checkpoint(checkpoint: Path) -> bool:
    """Whether the Trainer finished writing it: trainer_state.json is written last, not atomically."""
    try:
        checkpoint_step(checkpoint)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def metric_record(step: int, logs: dict[str, Any]) -> dict[str, Any]:
    """One metrics.jsonl line: `step`, then every numeric scalar, TRL's names mapped to ours.

    Names we set ourselves (`reward/...`, `self_certainty/...`) pass through unchanged; TRL's
    `rewards/<func>/mean|std` are kept under their own names too.
    """
    record: dict[str, Any] = {"step": int(step)}
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        name = _RENAMES.get(key, key)
        if name is not None:
            record[name] = value
    return record


class MetricsCallback(TrainerCallback):
    """Append one metrics.jsonl line per optimizer step (set `logging_steps=1`) and keep the summary."""

    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir
        self.summary: dict[str, Any] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "train_runtime" in logs:  # the end-of-training summary, not a step
            self.summary.update(metric_record(state.global_step, logs))
            return
        append_jsonl(self.run_dir.metrics, metric_record(state.global_step, logs))


def plot_metrics(run_dir: RunDir, prefixes: tuple[str, ...] = ("reward/", "kl", "loss")) -> list[Path]:
    """Draw one PNG per metric family (reward components, KL, loss) against step; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_jsonl_records(run_dir.metrics)
    if not records:
        return []
    written = []
    for prefix in prefixes:
        keys = sorted({k for r in records for k in r if k.startswith(prefix) and not k.endswith("_std")})
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for key in keys:
            points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, label=key)
        ax.set_xlabel("optimizer step")
        ax.set_title(f"{run_dir.path.name}: {prefix.rstrip('/')}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = run_dir.plots / f"{prefix.strip('/').replace('/', '_')}.png"
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def run_callbacks(run_dir: RunDir) -> tuple[MetricsCallback, list[TrainerCallback]]:
    """metrics.jsonl and TensorBoard writers for a Trainer (pass `report_to="none"`, these replace it)."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    metrics = MetricsCallback(run_dir)
    return metrics, [metrics, TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run_dir.tensorboard)))]


def trainer_run_args(run_dir: RunDir, *, seed: int, max_steps: int, save_steps: int, bf16: bool) -> dict[str, Any]:
    """The Trainer arguments every stage shares: where checkpoints go, logging every step, no hub, no wandb."""
    return {
        "output_dir": str(run_dir.checkpoints),
        "seed": seed,
        "data_seed": seed,
        "max_steps": max_steps,
        "save_strategy": "steps",
        "save_steps": save_steps,
        "logging_steps": 1,
        "report_to": "none",
        "bf16": bf16,
        "use_cpu": not _has_accelerator(),
        "disable_tqdm": False,
        "push_to_hub": False,
    }


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def replace_directory(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing it; `target` is missing for a moment at most, never partial."""
    previous = target.with_name(target.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    source.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


def finish_run(trainer: Any, run_dir: RunDir, metrics: MetricsCallback, **summary: Any) -> dict[str, Any]:
    """Save the final model + tokenizer to `model/`, draw the plots, write summary.json; returns the summary.

    For a LoRA run the trainer's model is a peft model and `save_model` writes only its adapter; its
    config is made to name the base portably (`smollm2`, not this machine's cache path).

    The model is written to `model.partial/` and renamed into place, so a run killed while saving
    leaves the previous `model/` (or none), never a half-written one that loads with missing weights.
    """
    from agents.models import is_adapter_dir, record_portable_base

    staging = run_dir.path / (run_dir.model.name + ".partial")
    if trainer.is_world_process_zero():
        shutil.rmtree(staging, ignore_errors=True)  # left by a run killed mid-save
    trainer.save_model(str(staging))  # every process calls it; the main one writes
    trainer.processing_class.save_pretrained(str(staging))
    if trainer.is_world_process_zero():
        if is_adapter_dir(staging):
            record_portable_base(staging)
        replace_directory(staging, run_dir.model)
    plots = plot_metrics(run_dir)
    result = {**metrics.summary, **summary, "model": str(run_dir.model), "plots": [str(p) for p in plots]}
    run_dir.write_summary(result)
    return result
