"""Runs that are reliable (issue 14): results of one config are never shown as another's, and a resumed
run ends exactly where an uninterrupted one would, with every step logged once.

Tiny random model, one optimizer step per run; "killed" states are made by deleting what a kill at
that moment would not have written yet.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import agents.models
from shop_env.cli import app
from training.grpo import GRPORunConfig, run_grpo
from training.pipeline import run_train
from training.presets import train_config
from training.run_dir import NOTHING_TO_DO
from training.sft import SFTRunConfig, run_sft

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"


def sft_config(out: Path, **overrides) -> SFTRunConfig:
    values = dict(model="tiny-random", data=str(FIXTURE), out=str(out), max_steps=1, batch_size=1, micro_batch_size=1,
                  max_examples=2, max_context_tokens=1024, max_completion_tokens=64, learning_rate=1e-3, seed=0)
    return SFTRunConfig(**{**values, **overrides})


def grpo_config(out: Path, **overrides) -> GRPORunConfig:
    values = dict(model="tiny-random", data=str(FIXTURE), out=str(out), max_steps=1, num_generations=2,
                  prompts_per_step=1, micro_batch_size=2, max_context_tokens=1024, max_completion_tokens=16,
                  max_examples=2, learning_rate=1e-3, seed=0)
    return GRPORunConfig(**{**values, **overrides})


def logged_steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def checkpoints(out: Path) -> list[str]:
    return sorted(path.name for path in (out / "checkpoints").glob("checkpoint-*"))


def plain(output: str) -> str:
    """CLI output without rich's error box and line wrapping."""
    return " ".join(output.replace("│", " ").split())


class ModelLoaded(Exception):
    """Raised by the patched model loader: the code under test got as far as loading a model."""


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise ModelLoaded("a model was about to load")

    monkeypatch.setattr(agents.models, "resolve_model", refuse)


# Class 1: results of one config never shown as another's (the full `shop-r1 train` case is in
# tests/test_training_pipeline.py, on a real run).


def test_train_refuses_results_built_on_an_unfinished_stage(tmp_path, no_model):
    config = train_config("cpu", out=str(tmp_path), model="tiny-random", data=str(FIXTURE), max_steps=1)
    for stage in ("sft", "grpo"):
        (tmp_path / stage).mkdir()
    (tmp_path / "sft" / "metrics.jsonl").write_text('{"step": 1}\n')  # SFT was interrupted...
    (tmp_path / "grpo" / "summary.json").write_text('{"step": 1}')  # ...yet grpo/ holds a run from an older SFT model
    with pytest.raises(ValueError, match="built on the unfinished sft stage"):
        run_train(config, resume=True)


def test_prepare_verl_refuses_an_out_prepared_for_another_config(tmp_path):
    out = tmp_path / "verl"
    args = ["prepare-verl", "--sessions", str(FIXTURE), "--model", "tiny-random", "--out", str(out)]
    first = CliRunner().invoke(app, [*args, "--val-sessions", str(FIXTURE)])
    assert first.exit_code == 0, first.output
    manifest = (out / "manifest.json").read_text()
    without_val = CliRunner().invoke(app, args)  # would leave the old rl_val.parquet for the verl launcher to pick up
    assert without_val.exit_code == 2
    assert f"val_sessions: {str(FIXTURE)!r} -> None" in plain(without_val.output)
    assert (out / "manifest.json").read_text() == manifest
    again = CliRunner().invoke(app, [*args, "--val-sessions", str(FIXTURE)])  # the same config: rewritten, same files
    assert again.exit_code == 0, again.output


# Class 2: a resumed run ends where the uninterrupted one would, each step logged once.


def test_sft_resume_ends_where_the_uninterrupted_run_ends(tmp_path):
    out = tmp_path / "sft"
    run_sft(sft_config(out))
    trained = weights(out / "model")

    again = run_sft(sft_config(out), resume=True)  # a finished run resumed: nothing to do
    assert logged_steps(out) == [1] and checkpoints(out) == ["checkpoint-1"]
    assert same_weights(weights(out / "model"), trained)
    assert "nothing to do" in again[NOTHING_TO_DO] and again["step"] == 1

    # Ctrl-C after step 1 was logged, before its checkpoint: metrics.jsonl is all that was written
    for written_later in ("checkpoints", "model", "plots"):
        shutil.rmtree(out / written_later)
    (out / "summary.json").unlink()
    resumed = run_sft(sft_config(out), resume=True)
    assert logged_steps(out) == [1] and resumed["step"] == 1
    assert same_weights(weights(out / "model"), trained)  # step 1 again, from the same seed: the same weights


def test_grpo_killed_after_its_last_checkpoint_resumes_to_write_only_the_model(tmp_path):
    out = tmp_path / "grpo"
    run_grpo(grpo_config(out))
    final_checkpoint = weights(out / "checkpoints" / "checkpoint-1")

    again = run_grpo(grpo_config(out), resume=True)
    assert logged_steps(out) == [1] and "nothing to do" in again[NOTHING_TO_DO]

    shutil.rmtree(out / "model")  # killed after checkpoint-1, before model/ and summary.json
    (out / "summary.json").unlink()
    summary = run_grpo(grpo_config(out), resume=True)
    assert logged_steps(out) == [1] and checkpoints(out) == ["checkpoint-1"]  # no step 2 past max_steps
    assert summary["step"] == 1 and json.loads((out / "summary.json").read_text())["step"] == 1
    assert same_weights(weights(out / "model"), final_checkpoint)
