"""The run directory: the exact config, per-step metrics, TensorBoard, plots and checkpoints of one run.

    <out>/config.json       the resolved config (preset + flags), written before training starts
    <out>/metrics.jsonl     one JSON object per optimizer step: `step`, every reward component, KL, loss
    <out>/completions.jsonl GRPO: every sampled completion with its reward breakdown (training/grpo.py)
    <out>/probe.jsonl       accuracy on a fixed probe set every few steps, when asked for (training/probe.py)
    <out>/tensorboard/      the same scalars for TensorBoard (`tensorboard --logdir <out>`)
    <out>/checkpoints/      HF Trainer checkpoints (`checkpoint-<step>`), resumable with `--resume`
    <out>/model/            the final weights and tokenizer (loadable by `--model <out>/model`); for a
                            `--lora-rank` run only the adapter (adapter_config.json, adapter_model.safetensors)
    <out>/plots/*.png       one panel per reward component, KL, loss against step, drawn at the end
    <out>/summary.json      runtime and final numbers

The .jsonl logs are append-only with an fsync per line; on resume the lines past the checkpoint's step are
dropped first (all of them when the run died before its first checkpoint), and TensorBoard hides its
events past that step, so an interrupted and resumed run has each step exactly once. A resumed run ends
where the uninterrupted one would: `RunDir.check_start` decides, before anything loads, whether there
is nothing left to do (the run finished with this config), only the final model to write (the last
checkpoint is the last step), or steps to train.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from shop_env.atomic_io import append_jsonl, read_jsonl_records, write_figure, write_json, write_text
from shop_env.preflight import config_changes, writable_dir
from training.probe import PROBE_FILE

METRICS_FILE = "metrics.jsonl"
COMPLETIONS_FILE = "completions.jsonl"
STEP_LOGS = (METRICS_FILE, COMPLETIONS_FILE, PROBE_FILE)
"""Logs whose lines carry the optimizer `step` they belong to, cut back to the checkpoint on resume."""
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE_FILE = "trainer_state.json"
NOTHING_TO_DO = "nothing_to_do"
"""Key of the message in the summary a run returns when `--resume` found it already finished."""

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


@dataclass(frozen=True)
class Start:
    """Where a run starts, decided from its directory before anything is loaded (`RunDir.check_start`)."""

    checkpoint: Path | None = None
    """Resume from this checkpoint; None: from step 0."""
    step: int = 0
    """Optimizer steps already done: the checkpoint's step (0 without one)."""
    final: bool = False
    """The checkpoint holds the last step: nothing is left to train, only the final model to write."""
    finished: dict[str, Any] | None = None
    """The summary of a run already finished with this very config (plus a NOTHING_TO_DO message)."""


class RunDir:
    """Paths of one run and the helpers that write into it."""

    def __init__(self, path: str | Path):
        self.path = writable_dir(path)  # a read-only --out fails here, before any data or model loads
        self.start = Start()

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def completions(self) -> Path:
        return self.path / COMPLETIONS_FILE

    @property
    def probe(self) -> Path:
        return self.path / PROBE_FILE

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

    def refuse_other_config(self, data: dict[str, Any], may_change: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """The recorded config (None: none yet); raises when `data` differs from it in more than `may_change`.

        A resumed run with another learning rate or reward would not be the run its checkpoint belongs to.
        """
        previous = self.read_json(CONFIG_FILE)
        changes = [] if previous is None else config_changes(previous, data, may_change=may_change)
        if changes:
            raise ValueError(f"--resume with a different config than {self.path / CONFIG_FILE} ({'; '.join(changes)}); "
                             "resume with the same flags or start a new --out")
        return previous

    def write_summary(self, summary: dict) -> Path:
        return write_json(self.path / SUMMARY_FILE, summary)

    def read_json(self, name: str) -> dict | None:
        """A JSON file of the run (config.json, summary.json), or None when it has not been written."""
        path = self.path / name
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def holds_run(self) -> bool:
        """Whether a run already trained here: metrics, a complete checkpoint or a summary."""
        return bool(read_jsonl_records(self.metrics)) or self.last_checkpoint() is not None or (self.path / SUMMARY_FILE).exists()

    def check_start(self, config: Any, *, resume: bool, may_change: tuple[str, ...] = ("max_steps",)) -> Start:
        """Where this run starts; refuses what would mix two runs or train past the end. Writes nothing.

        Without --resume the directory must hold no run. With --resume the config must be the recorded
        one but for `may_change`; a run finished with exactly this config has nothing left to do; a
        checkpoint at the last step (`max_steps`, or the planned total of an epoch-based run) leaves only
        the final model to write, and one past it is refused.
        """
        if not resume:
            if self.holds_run():
                raise FileExistsError(
                    f"{self.path} already holds a run (metrics, checkpoints or a summary); pass --resume to continue it "
                    "or choose another --out"
                )
            return Start()
        data = config_dict(config)
        previous = self.refuse_other_config(data, may_change)
        summary = self.read_json(SUMMARY_FILE)
        if summary is not None and previous == data:
            message = f"{self.path} already finished this run (step {summary.get('step')}); nothing to do"
            return Start(finished={**summary, NOTHING_TO_DO: message})
        checkpoint = self.last_checkpoint()
        if checkpoint is None:
            if summary is not None:
                raise ValueError(f"{self.path} finished with another max_steps and keeps no checkpoint to continue from; "
                                 "start a new --out")
            return Start()
        state = trainer_state(checkpoint)
        step, target = int(state["global_step"]), data.get("max_steps")
        if target is None:  # epoch-based: the checkpoint recorded the planned total of this same config
            if previous is not None and previous.get("max_steps") is not None:
                raise ValueError(f"the run in {self.path} was capped at max_steps={previous['max_steps']}; resume it "
                                 "with --max-steps (that or more), not by epochs")
            target = int(state["max_steps"])
        if step > target:
            raise ValueError(f"{checkpoint} is at step {step}, past max_steps={target}; resume with --max-steps {step} "
                             "or more, or start a new --out")
        return Start(checkpoint=checkpoint, step=step, final=step == target)

    def begin(self, config: Any, start: Start) -> None:
        """Cut the step logs back to the start's step (each step is logged once), write config.json."""
        for name in STEP_LOGS:
            path = self.path / name
            if path.exists():
                kept = [record for record in read_jsonl_records(path) if record.get("step", 0) <= start.step]
                write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in kept))
        write_json(self.path / CONFIG_FILE, config_dict(config))
        self.start = start

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


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as the JSON config.json holds (tuples become lists, so it compares equal after a round trip)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def trainer_state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's trainer_state.json: `global_step`, the planned `max_steps`, the log history."""
    return json.loads((Path(checkpoint) / TRAINER_STATE_FILE).read_text())


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint was saved at, from its trainer_state.json."""
    return int(trainer_state(checkpoint)["global_step"])


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
    """One PNG per metric family (reward components, KL, loss), one panel per metric on its own y scale
    (the DARS term runs to 1000 while the format reward is 0.5); returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_jsonl_records(run_dir.metrics)
    if not records:
        return []
    written = []
    for prefix in prefixes:
        keys = sorted({k for r in records for k in r if k.startswith(prefix) and not k.endswith("_std")})
        series = {key: [(r["step"], r[key]) for r in records if r.get(key) is not None] for key in keys}
        series = {key: points for key, points in series.items() if points}
        if not series:
            continue
        columns = min(3, len(series))
        rows = -(-len(series) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False)
        for ax, (key, points) in zip(axes.flat, series.items()):
            ax.plot(*zip(*points), marker="o", markersize=2.5)
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("optimizer step", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(series):]:
            ax.set_visible(False)
        fig.suptitle(f"{run_dir.path.name}: {prefix.rstrip('/')}", fontsize=10)
        path = write_figure(fig, run_dir.plots / f"{prefix.strip('/').replace('/', '_')}.png")
        written.append(path)
    return written


def run_callbacks(run_dir: RunDir) -> tuple[MetricsCallback, list[TrainerCallback]]:
    """metrics.jsonl and TensorBoard writers for a Trainer (pass `report_to="none"`, these replace it)."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    metrics = MetricsCallback(run_dir)
    # purge_step: TensorBoard hides the events a killed run logged past the step this one resumes from
    writer = SummaryWriter(log_dir=str(run_dir.tensorboard), purge_step=run_dir.start.step + 1)
    return metrics, [metrics, TensorBoardCallback(tb_writer=writer)]


def run_trainer(trainer: Any, start: Start) -> None:
    """`trainer.train()` from the start's checkpoint, or, when that checkpoint is the last step, only its loading.

    transformers' Trainer resumed from the checkpoint of its last step trains one step more (its epoch
    loop runs a step before it looks at max_steps), so for a final checkpoint this does the two things
    `train()` does before its loop, load the weights (or LoRA adapter) and the trainer state, and stops.
    """
    if not start.final:
        trainer.train(resume_from_checkpoint=str(start.checkpoint) if start.checkpoint else None)
        return
    from transformers import TrainerState

    trainer._load_from_checkpoint(str(start.checkpoint))
    trainer.state = TrainerState.load_from_json(str(start.checkpoint / TRAINER_STATE_FILE))


def trainer_run_args(run_dir: RunDir, *, seed: int, max_steps: int, save_steps: int, bf16: bool) -> dict[str, Any]:
    """The Trainer arguments every stage shares: where checkpoints go (the last 2 kept: a resume needs one, and
    one more survives a kill while the next is written), logging every step, no hub, no wandb."""
    return {
        "output_dir": str(run_dir.checkpoints),
        "seed": seed,
        "data_seed": seed,
        "max_steps": max_steps,
        "save_strategy": "steps",
        "save_steps": save_steps,
        "save_total_limit": 2,
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
    result = {"step": trainer.state.global_step, **metrics.summary, **summary, "model": str(run_dir.model),
              "plots": [str(p) for p in plots]}
    run_dir.write_summary(result)
    return result
