"""`shop-r1 train` end to end on the tiny random model: SFT, then GRPO from the SFT model, then evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shop_r1.cli import app
from training.presets import train_config

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"


def plain(output: str) -> str:
    """CLI output without rich's error box and line wrapping."""
    return " ".join(output.replace("│", " ").split())


def test_train_config_wires_the_stages(tmp_path):
    config = train_config("cpu", out=str(tmp_path), max_steps=3, ablation="no_dars")
    assert config.sft.out == str(tmp_path / "sft") and config.grpo.out == str(tmp_path / "grpo")
    assert config.grpo.model == str(tmp_path / "sft" / "model")  # GRPO starts from the SFT model
    assert config.sft.max_steps == config.grpo.max_steps == 3
    assert config.grpo.reward.dars_factor == 1.0 and not config.skip_sft
    no_sft = train_config("cpu", out=str(tmp_path), ablation="no_sft", model="tiny-random")
    assert no_sft.skip_sft and no_sft.grpo.model == "tiny-random"
    assert no_sft.grpo.reward.dars_factor == 1000.0  # no_sft is a training switch, not a reward one
    with pytest.raises(ValueError, match="unknown ablation"):
        train_config("cpu", ablation="no_kl")


@pytest.mark.slow
def test_shop_r1_train_runs_end_to_end(tmp_path):
    out = tmp_path / "run"
    args = [
        "train", "--preset", "cpu", "--model", "tiny-random", "--sessions", str(FIXTURE), "--max-steps", "1",
        "--max-examples", "4", "--eval-sessions", str(FIXTURE), "--eval-limit", "2", "--out", str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for stage in ("sft", "grpo", "eval"):
        assert (out / stage / "summary.json").exists(), stage
    grpo_metrics = [json.loads(line) for line in (out / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in grpo_metrics] == [1] and "reward/dars_value" in grpo_metrics[0]
    assert json.loads((out / "grpo" / "config.json").read_text())["model"] == str(out / "sft" / "model")
    assert "exact_acc" in json.loads((out / "eval" / "summary.json").read_text())
    config = (out / "config.json").read_text()
    again = CliRunner().invoke(app, [*args, "--resume"])  # every stage is done: nothing runs again
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output

    # Another config into the same --out never shows these results as its own (issue 14, class 1)
    other = CliRunner().invoke(app, [*args, "--ablation", "no_dars", "--alpha", "0.5"])
    assert other.exit_code == 2 and "pass --resume to continue it or choose another --out" in plain(other.output)
    resumed_other = CliRunner().invoke(app, [*args, "--ablation", "no_dars", "--alpha", "0.5", "--resume"])
    assert resumed_other.exit_code == 2
    assert "grpo.reward.alpha: 0.005 -> 0.5" in plain(resumed_other.output) and "start a new --out" in plain(resumed_other.output)
    longer = CliRunner().invoke(app, [*args, "--max-steps", "2", "--resume"])  # would retrain SFT under GRPO's results
    assert longer.exit_code == 2 and "finished with another config (max_steps: 1 -> 2)" in plain(longer.output)
    assert (out / "config.json").read_text() == config
