"""`shop-r1 compare`: rows re-scored on the steps they share, tables, behaviour and the figure."""

import json

import pytest
from typer.testing import CliRunner

from agents.compare import run_compare
from agents.evaluate import EvalConfig, run_eval
from shop_r1.cli import app

from conftest import FIXTURES

SESSIONS = str(FIXTURES / "real_format_sessions.jsonl")


@pytest.fixture(scope="module")
def evals(tmp_path_factory):
    root = tmp_path_factory.mktemp("evals")
    run_eval(EvalConfig(policy="oracle", sessions=SESSIONS, out=root / "oracle", progress=False))
    run_eval(EvalConfig(policy="terminate", sessions=SESSIONS, out=root / "terminate", limit=6, progress=False))
    (root / "run" / "eval").mkdir(parents=True)  # a `shop-r1 train` run directory holds its eval in eval/
    for name in ("predictions.jsonl", "metrics.json"):
        (root / "run" / "eval" / name).write_bytes((root / "oracle" / name).read_bytes())
    return root


def test_rows_are_scored_on_the_steps_they_share(evals, tmp_path):
    result = run_compare([f"Human={evals / 'oracle'}", str(evals / "terminate"), f"Train run={evals / 'run'}"], tmp_path)
    assert result["n_steps"] == 6  # the terminate eval stopped at 6 steps; the oracle's 9 are cut to those
    oracle, terminate, run = result["rows"]
    assert [row["label"] for row in result["rows"]] == ["Human", "terminate", "Train run"]
    assert oracle["metrics"]["exact_acc"] == 1.0 and oracle["steps_in_source"] == 9
    assert run["metrics"]["exact_acc"] == 1.0
    assert terminate["behaviour"]["terminate_rate"] == 1.0
    gold_terminate = terminate["metrics"]["per_type"]["terminate"]["support"] / 6
    assert terminate["metrics"]["exact_acc"] == pytest.approx(gold_terminate)
    # without DARS a correct click or search pays far less, so the oracle's edge over terminating shrinks
    assert oracle["behaviour"]["mean_reward"]["with_dars"] > 10 * oracle["behaviour"]["mean_reward"]["without_dars"]
    assert terminate["behaviour"]["mean_reward"]["with_dars"] == terminate["behaviour"]["mean_reward"]["without_dars"]
    written = json.loads((tmp_path / "compare.json").read_text())
    assert written["n_steps"] == 6
    report = (tmp_path / "compare.md").read_text()
    assert "| Human | 100.00% [100.00, 100.00]" in report and "Table 3" in report
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_bad_arguments_say_what_is_wrong(evals, tmp_path):
    with pytest.raises(FileNotFoundError, match="no predictions.jsonl"):
        run_compare([str(tmp_path)], tmp_path / "out")
    with pytest.raises(ValueError, match="share a label"):
        run_compare([f"A={evals / 'oracle'}", f"A={evals / 'terminate'}"], tmp_path / "out")


def test_cli_compare_prints_the_tables(evals, tmp_path):
    result = CliRunner().invoke(app, ["compare", str(evals / "oracle"), str(evals / "terminate"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Table 3" in result.output and (tmp_path / "compare.md").exists()
    missing = CliRunner().invoke(app, ["compare", str(tmp_path / "nothing"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "no predictions.jsonl" in " ".join(missing.output.replace("│", " ").split())
