"""The run directory: metrics lines, resume bookkeeping, config checks and plots, without a model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from shop_env.atomic_io import append_jsonl, read_jsonl_records
from training.run_dir import NOTHING_TO_DO, MetricsCallback, RunDir, finish_run, metric_record, plot_metrics


@dataclass
class Tiny:
    learning_rate: float = 1e-7
    max_steps: int | None = 5


def _checkpoint(run: RunDir, step: int, planned: int = 5) -> None:
    path = run.checkpoints / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": planned}))


def _steps(run: RunDir) -> list[int]:
    return [record["step"] for record in read_jsonl_records(run.metrics)]


def test_metric_record_keeps_numbers_and_renames_trl_names():
    record = metric_record(3, {"kl": 0.01, "entropy": 2.5, "reward": 1.0, "reward/format": 0.5, "note": "x", "nan": float("nan")})
    assert record == {"step": 3, "kl": 0.01, "policy/entropy": 2.5, "reward/format": 0.5, "nan": None}


def test_resume_cuts_metrics_back_to_the_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    run.begin(Tiny(), run.check_start(Tiny(), resume=False))
    for step in (1, 2, 3):
        append_jsonl(run.metrics, {"step": step})
    _checkpoint(run, 2)
    with pytest.raises(FileExistsError, match="--resume"):
        run.check_start(Tiny(), resume=False)
    start = run.check_start(Tiny(), resume=True)
    assert (start.checkpoint, start.step, start.final) == (run.checkpoints / "checkpoint-2", 2, False)
    assert _steps(run) == [1, 2, 3]  # the check alone writes nothing
    run.begin(Tiny(), start)
    assert _steps(run) == [1, 2]  # step 3 will be trained again


def test_resume_before_the_first_checkpoint_starts_over_with_an_empty_log(tmp_path):
    run = RunDir(tmp_path)
    run.begin(Tiny(), run.check_start(Tiny(), resume=False))
    append_jsonl(run.metrics, {"step": 1})  # killed (Ctrl-C) after logging step 1, before any checkpoint
    start = run.check_start(Tiny(), resume=True)
    assert (start.checkpoint, start.step) == (None, 0)
    run.begin(Tiny(), start)
    assert _steps(run) == []  # step 1 is trained, and logged, again: once


def test_resume_at_or_past_the_last_step(tmp_path):
    run = RunDir(tmp_path)
    run.begin(Tiny(max_steps=3), run.check_start(Tiny(max_steps=3), resume=False))
    _checkpoint(run, 3, planned=3)  # killed after the last checkpoint, before model/ and summary.json
    start = run.check_start(Tiny(max_steps=3), resume=True)
    assert start.final and start.step == 3  # only the final model is left to write
    assert not run.check_start(Tiny(max_steps=4), resume=True).final  # a longer run continues from it
    with pytest.raises(ValueError, match="past max_steps=2"):
        run.check_start(Tiny(max_steps=2), resume=True)
    run.write_summary({"step": 3})
    finished = run.check_start(Tiny(max_steps=3), resume=True).finished
    assert finished["step"] == 3 and "nothing to do" in finished[NOTHING_TO_DO]


def test_an_epoch_based_resume_reads_the_planned_total_from_the_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    run.begin(Tiny(max_steps=None), run.check_start(Tiny(max_steps=None), resume=False))
    _checkpoint(run, 6, planned=6)
    assert run.check_start(Tiny(max_steps=None), resume=True).final
    capped = RunDir(tmp_path / "capped")
    capped.begin(Tiny(max_steps=6), capped.check_start(Tiny(max_steps=6), resume=False))
    _checkpoint(capped, 2, planned=6)
    with pytest.raises(ValueError, match="capped at max_steps=6"):
        capped.check_start(Tiny(max_steps=None), resume=True)


def test_last_checkpoint_is_the_highest_complete_one(tmp_path):
    run = RunDir(tmp_path)
    assert run.last_checkpoint() is None and run.check_start(Tiny(), resume=True).checkpoint is None
    _checkpoint(run, 2)
    _checkpoint(run, 10)
    (run.checkpoints / "checkpoint-12").mkdir()  # being written when the run died: no trainer_state.json
    assert run.last_checkpoint() == run.checkpoints / "checkpoint-10"


def test_resume_refuses_a_changed_config_except_max_steps_and_keeps_the_log(tmp_path):
    run = RunDir(tmp_path)
    run.begin(Tiny(), run.check_start(Tiny(), resume=False))
    for step in (1, 2):
        append_jsonl(run.metrics, {"step": step})
    _checkpoint(run, 1)
    run.check_start(Tiny(max_steps=9), resume=True)
    with pytest.raises(ValueError, match="learning_rate: 1e-07 -> 0.001"):
        run.check_start(Tiny(learning_rate=1e-3), resume=True)
    assert _steps(run) == [1, 2]  # refused before anything was cut


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
        self.state = SimpleNamespace(global_step=1)

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
