"""The run directory: metrics lines, resume bookkeeping, config checks and plots, without a model."""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import dataclass

import pytest

from shop_env.atomic_io import append_jsonl, read_jsonl_records
from training.run_dir import MetricsCallback, RunDir, finish_run, metric_record, plot_metrics


@dataclass
class Tiny:
    learning_rate: float = 1e-7
    max_steps: int = 5


def _checkpoint(run: RunDir, step: int) -> None:
    path = run.checkpoints / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))


def test_metric_record_keeps_numbers_and_renames_trl_names():
    record = metric_record(3, {"kl": 0.01, "entropy": 2.5, "reward": 1.0, "reward/format": 0.5, "note": "x", "nan": float("nan")})
    assert record == {"step": 3, "kl": 0.01, "policy/entropy": 2.5, "reward/format": 0.5, "nan": None}


def test_resume_cuts_metrics_back_to_the_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    for step in (1, 2, 3):
        append_jsonl(run.metrics, {"step": step})
    _checkpoint(run, 2)
    with pytest.raises(FileExistsError, match="--resume"):
        run.prepare_resume(resume=False)
    assert run.prepare_resume(resume=True) == run.checkpoints / "checkpoint-2"
    assert [r["step"] for r in read_jsonl_records(run.metrics)] == [1, 2]  # step 3 will be trained again


def test_last_checkpoint_is_the_highest_complete_one(tmp_path):
    run = RunDir(tmp_path)
    assert run.last_checkpoint() is None and run.prepare_resume(resume=True) is None
    _checkpoint(run, 2)
    _checkpoint(run, 10)
    (run.checkpoints / "checkpoint-12").mkdir()  # being written when the run died: no trainer_state.json
    assert run.last_checkpoint() == run.checkpoints / "checkpoint-10"


def test_resume_refuses_a_changed_config_except_max_steps(tmp_path):
    run = RunDir(tmp_path)
    run.record_config(Tiny(), resuming=False)
    run.record_config(Tiny(max_steps=9), resuming=True)
    with pytest.raises(ValueError, match="learning_rate: 1e-07 -> 0.001"):
        run.record_config(Tiny(learning_rate=1e-3), resuming=True)


def test_plots_one_png_per_family(tmp_path):
    run = RunDir(tmp_path)
    for step in (1, 2):
        append_jsonl(run.metrics, {"step": step, "reward/format": 0.5, "reward/total": 1.0 * step, "kl": 0.1, "loss": 0.2})
    names = sorted(path.name for path in plot_metrics(run))
    assert names == ["kl.png", "loss.png", "reward.png"]
    assert all((run.plots / name).read_bytes().startswith(b"\x89PNG") for name in names)


class FakeTrainer:
    """Writes a model in two files, optionally dying between them (a run killed while saving)."""

    def __init__(self, weights: str, die_midway: bool = False):
        self.weights, self.die_midway = weights, die_midway
        self.processing_class = self

    def is_world_process_zero(self) -> bool:
        return True

    def save_model(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "model.safetensors").write_text(self.weights)
        if self.die_midway:
            raise KeyboardInterrupt("killed while saving")

    def save_pretrained(self, path: str) -> None:
        (Path(path) / "tokenizer.json").write_text("{}")


def test_final_model_is_replaced_whole_or_not_at_all(tmp_path):
    run = RunDir(tmp_path)
    finish_run(FakeTrainer("v1"), run, MetricsCallback(run))
    assert sorted(p.name for p in run.model.iterdir()) == ["model.safetensors", "tokenizer.json"]
    with pytest.raises(KeyboardInterrupt):
        finish_run(FakeTrainer("v2", die_midway=True), run, MetricsCallback(run))
    assert (run.model / "model.safetensors").read_text() == "v1" and (run.model / "tokenizer.json").exists()
    summary = finish_run(FakeTrainer("v3"), run, MetricsCallback(run))
    assert (run.model / "model.safetensors").read_text() == "v3" and summary["model"] == str(run.model)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("model")) == ["model"]
