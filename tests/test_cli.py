"""The `shop-r1` command line: every command is listed, replay prints a scored session, demo writes its report."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shop_r1.cli import app

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"
runner = CliRunner()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("replay", "eval", "demo", "make-sessions", "convert", "prepare-verl", "sft", "grpo", "train"):
        assert command in result.output


def test_replay_with_the_oracle_earns_the_session_maximum():
    result = runner.invoke(app, ["replay", "--sessions", str(FIXTURE), "--session-id", "opera-like-0001", "--policy", "oracle"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "step 5/5" in result.output and "human rationale: I need new cushioned running shoes" in result.output
    assert "page offers" in result.output and "header.search_box.search_input" in result.output
    assert "100.0%" in result.output


@pytest.mark.parametrize("policy", ["terminate", "random", "heuristic"])
def test_replay_with_baselines_never_beats_the_maximum(policy):
    result = runner.invoke(app, ["replay", "--sessions", str(FIXTURE), "--policy", policy, "--seed", "3"], terminal_width=200)
    assert result.exit_code == 0, result.output
    share = float(re.findall(r"([0-9.]+)%", result.output)[-1])
    assert 0.0 <= share <= 100.0


def test_replay_unknown_session_is_a_clear_error():
    result = runner.invoke(app, ["replay", "--sessions", str(FIXTURE), "--session-id", "nope"])
    assert result.exit_code != 0 and "unknown session_id 'nope'" in str(result.exception)


@pytest.mark.slow
def test_demo_puts_zero_shot_the_shipped_policies_and_the_heuristic_side_by_side(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--limit", "2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    compared = json.loads((tmp_path / "compare.json").read_text())
    labels = [row["label"] for row in compared["rows"]]
    assert labels[0].startswith("Zero-shot") and labels[-1] == "Heuristic" and compared["n_steps"] == 2
    shipped = [label for label in labels if "shipped" in label]
    report = (tmp_path / "compare.md").read_text()
    assert len(shipped) + report.count("- not shown:") == 2  # each shipped policy is shown or said to be missing
    for policy in ("smollm2", "heuristic"):
        metrics = json.loads((tmp_path / policy / "metrics.json").read_text())
        assert metrics["n_steps"] == 2 and metrics["run"]["policy"] == policy
    assert "Table 3" in result.output
