"""Runs that are reliable (issue 14): results of one config are never shown as another's, a resumed run
ends exactly where an uninterrupted one would, with every step logged once, and bad inputs or outputs
fail before any model loads.

Tiny random model, one optimizer step per run; "killed" states are made by deleting what a kill at
that moment would not have written yet.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import agents.models
from shop_r1.cli import app
from training.grpo import GRPORunConfig, run_grpo
from training.pipeline import run_train
from training.presets import train_config
from training.run_dir import NOTHING_TO_DO
from training.sft import SFTRunConfig, run_sft

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"


def sft_config(out: Path, **overrides) -> SFTRunConfig:
    values = dict(model="tiny-random", sessions=str(FIXTURE), out=str(out), max_steps=1, batch_size=1, micro_batch_size=1,
                  max_examples=2, context_window=1024, max_new_tokens=64, learning_rate=1e-3, seed=0)
    return SFTRunConfig(**{**values, **overrides})


def grpo_config(out: Path, **overrides) -> GRPORunConfig:
    values = dict(model="tiny-random", sessions=str(FIXTURE), out=str(out), max_steps=1, num_generations=2,
                  prompts_per_step=1, micro_batch_size=2, context_window=1024, max_new_tokens=16,
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
    config = train_config("cpu", out=str(tmp_path), model="tiny-random", sessions=str(FIXTURE), max_steps=1)
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


# Class 10: inputs and outputs are checked before any model loads.

MISSING = "missing.jsonl"


def test_grpo_with_missing_data_fails_before_the_model_and_leaves_no_config(tmp_path, no_model):
    out = tmp_path / "grpo"
    with pytest.raises(FileNotFoundError, match=MISSING):
        run_grpo(grpo_config(out, sessions=str(tmp_path / MISSING)))
    assert not (out / "config.json").exists()
    result = CliRunner().invoke(app, ["grpo", "--model", "tiny-random", "--sessions", str(tmp_path / MISSING), "--out", str(out)])
    assert result.exit_code == 2 and MISSING in plain(result.output), result.output
    assert not (out / "config.json").exists()


def test_train_with_missing_eval_data_fails_before_any_stage_runs(tmp_path, no_model):
    config = train_config("cpu", out=str(tmp_path / "run"), model="tiny-random", sessions=str(FIXTURE), max_steps=1,
                          eval_sessions=str(tmp_path / MISSING))
    with pytest.raises(FileNotFoundError, match=MISSING):
        run_train(config)


def test_prepare_verl_with_missing_val_sessions_fails_before_the_training_split(tmp_path, no_model):
    args = ["prepare-verl", "--sessions", str(FIXTURE), "--val-sessions", str(tmp_path / MISSING),
            "--model", "tiny-random", "--out", str(tmp_path / "verl")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and MISSING in plain(result.output), result.output


COMMANDS = {
    "eval": ["eval", "--policy", "tiny-random", "--sessions", str(FIXTURE), "--limit", "1"],
    "sft": ["sft", "--model", "tiny-random", "--sessions", str(FIXTURE), "--max-steps", "1"],
    "grpo": ["grpo", "--model", "tiny-random", "--sessions", str(FIXTURE), "--max-steps", "1"],
    "train": ["train", "--model", "tiny-random", "--sessions", str(FIXTURE), "--eval-sessions", str(FIXTURE), "--max-steps", "1"],
    "prepare-verl": ["prepare-verl", "--sessions", str(FIXTURE), "--model", "tiny-random"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_out_that_takes_no_files_fails_before_the_model(command, tmp_path, no_model):
    """An --out under a regular file can never be created (root writes into read-only directories, so
    this is the unwritable output every user, root included, can hit)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(app, [*COMMANDS[command], "--out", str(blocker / "out")])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "is not a writable directory" in plain(result.output) and "choose another --out" in plain(result.output)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_out_fails_eval_before_the_model(tmp_path, no_model):
    out = tmp_path / "eval"
    out.mkdir()
    out.chmod(0o555)
    result = CliRunner().invoke(app, [*COMMANDS["eval"], "--out", str(out)])
    assert result.exit_code == 2 and "is not a writable directory" in plain(result.output), result.output
