"""Evaluation: teacher-forced replay in batches (steps ahead, or sessions in lockstep), metrics, files, the sweep and the CLI."""

import json

import gymnasium as gym
import pytest
from typer.testing import CliRunner

from agents.evaluate import EvalConfig, evaluate_policy, run_eval
from agents.policies import OraclePolicy, PolicyOutput, RandomValidPolicy
from shop_env import ENV_ID
from shop_r1.cli import app
from shop_env.response_format import format_response
from shop_env.session import Action

from conftest import FIXTURES

SESSIONS = str(FIXTURES / "real_format_sessions.jsonl")


class EchoPolicy:
    """Fails the format on even steps and otherwise repeats the env's last_action_error as its rationale,
    so its answers depend on per-session env state that lockstep batching must keep apart."""

    def act(self, observations):
        outputs = []
        for observation in observations:
            if int(observation["step_index"]) % 2 == 0:
                outputs.append(PolicyOutput.from_text(f"garbage {observation['session_id']}"))
            else:
                rationale = f"previous error: {observation['last_action_error']}"
                outputs.append(PolicyOutput.from_text(format_response(rationale, Action("terminate"))))
        return outputs


def _manual_replay(policy, sessions_path):
    """The reference: one env, one session at a time, one observation per act call."""
    env = gym.make(ENV_ID, sessions=sessions_path)
    texts = []
    for index in range(len(env.unwrapped.sessions)):
        observation, _ = env.reset(options={"index": index})
        terminated = False
        while not terminated:
            output = policy.act([observation])[0]
            texts.append(output.text)
            observation, _, terminated, _, _ = env.step({"response": output.text, "self_certainty": None})
    return texts


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_lockstep_batches_equal_stepping_each_env_alone(batch_size):
    result = evaluate_policy(EchoPolicy(), SESSIONS, batch_size=batch_size, progress=False)
    assert [r["text"] for r in result["predictions"]] == _manual_replay(EchoPolicy(), SESSIONS)
    assert any("previous error: not one JSON object" in r["text"] for r in result["predictions"])


class BatchSpy(RandomValidPolicy):
    """RandomValidPolicy (feedback-blind, seeded per step) that records the batches it is handed."""

    def __init__(self):
        super().__init__(seed=3)
        self.batches = []

    def act(self, observations):
        self.batches.append([(o["session_id"], int(o["step_index"])) for o in observations])
        return super().act(observations)


def test_feedback_blind_policies_get_the_next_steps_in_order_and_the_same_records(fixture_sessions):
    """uses_last_action_error = False: batches of the next steps in order, several per session, and the
    same records (rewards included) as the lockstep schedule a feedback-reading policy gets."""
    ahead = BatchSpy()
    result = evaluate_policy(ahead, fixture_sessions, batch_size=4, progress=False)
    planned = [(s.session_id, i) for s in fixture_sessions for i in range(len(s))]
    assert [step for batch in ahead.batches for step in batch] == planned
    assert [len(batch) for batch in ahead.batches] == [4, 4, 1]
    lockstep = BatchSpy()
    lockstep.uses_last_action_error = True
    reference = evaluate_policy(lockstep, fixture_sessions, batch_size=4, progress=False)
    assert max(len(batch) for batch in lockstep.batches) == 2  # one step of each of the 2 sessions
    assert result["predictions"] == reference["predictions"]
    assert result["metrics"]["exact_acc"] == reference["metrics"]["exact_acc"]


def test_feedback_blind_schedule_respects_the_limit(fixture_sessions):
    spy = BatchSpy()
    result = evaluate_policy(spy, fixture_sessions, limit=7, batch_size=3, progress=False)
    assert [len(batch) for batch in spy.batches] == [3, 3, 1]
    assert [(r["session_id"], r["step"]) for r in result["predictions"]] == [
        (s.session_id, i) for s in fixture_sessions for i in range(len(s))
    ][:7]


def test_oracle_scores_perfectly_and_records_every_step(fixture_sessions):
    result = evaluate_policy(OraclePolicy(fixture_sessions), fixture_sessions, batch_size=2, progress=False)
    metrics = result["metrics"]
    assert metrics["exact_acc"] == metrics["type_acc"] == metrics["type_macro_f1"] == 1.0
    assert metrics["n_steps"] == 9 and metrics["n_sessions"] == 2 and metrics["format_ok"] == 1.0
    records = result["predictions"]
    assert [(r["session_id"], r["step"]) for r in records] == [
        (s.session_id, i) for s in fixture_sessions for i in range(len(s))
    ]
    assert all(r["action"] == r["gold"] for r in records)
    assert metrics["reward"]["reward/format"] == 0.5


def test_limit_takes_the_first_steps_in_session_order(fixture_sessions):
    result = evaluate_policy(RandomValidPolicy(), fixture_sessions, limit=7, progress=False)
    assert [(r["session_id"], r["step"]) for r in result["predictions"]][-3:] == [
        ("opera-like-0001", 4), ("opera-like-0002", 0), ("opera-like-0002", 1)
    ]
    assert result["metrics"]["n_steps"] == 7


def test_eval_writes_metrics_predictions_and_report(tmp_path):
    metrics = run_eval(EvalConfig(policy="heuristic", sessions=SESSIONS, out=tmp_path, progress=False))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["exact_acc"] == metrics["exact_acc"]
    for key in ("type_acc", "type_macro_f1", "per_type", "reward", "self_certainty", "run"):
        assert key in written
    assert written["run"]["policy"] == "heuristic" and written["run"]["context"] == "whole"
    lines = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 9 and {"session_id", "step", "text", "action", "gold", "reward"} <= set(lines[0])
    report = (tmp_path / "report.md").read_text()
    assert "| Model | Settings | Exact Action Acc. | Action Type Acc. | Action Type F1 |" in report
    assert "Exact type_and_submit" in report and "Type terminate" in report


def test_llm_eval_reports_tokens_and_format_failures(tmp_path):
    metrics = run_eval(
        EvalConfig(policy="tiny-random", sessions=SESSIONS, out=tmp_path, limit=3, max_new_tokens=4, greedy=True, progress=False)
    )
    assert metrics["n_steps"] == 3 and metrics["format_ok"] == 0.0 and metrics["exact_acc"] == 0.0
    assert metrics["tokens"]["completion_mean"] == 4 and metrics["tokens"]["prompt_max"] <= 2048 - 4
    assert metrics["self_certainty"] == {"mean": None, "count": 0, "absent_because": None}


def test_temperature_sweep_writes_one_run_per_temperature_and_a_plot(tmp_path):
    sweep = run_eval(
        EvalConfig(
            policy="tiny-random", sessions=SESSIONS, out=tmp_path, limit=2, max_new_tokens=3,
            temperatures=(0.7, 1.2), context="latest", progress=False,
        )
    )
    assert [row["temperature"] for row in sweep["temperatures"]] == [0.7, 1.2]
    for name in ("T0.7", "T1.2"):
        assert json.loads((tmp_path / name / "metrics.json").read_text())["run"]["temperature"] == float(name[1:])
    assert (tmp_path / "temperature_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "sweep.json").read_text())["temperatures"] == sweep["temperatures"]
    assert "| 1.2 |" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"context": "all"}, "context"),
        ({"limit": 0}, "limit"),
        ({"temperatures": (0.7, 0.7)}, "repeat"),
        ({"temperatures": (0.0,)}, "> 0"),
        ({"temperatures": (0.7,), "policy": "oracle"}, "LLM policy"),
        ({"backend": "tgi"}, "backend"),
    ],
)
def test_bad_eval_config_says_what_is_wrong(changes, message):
    with pytest.raises(ValueError, match=message):
        EvalConfig(**changes)


def test_cli_eval_runs_a_baseline(tmp_path):
    result = CliRunner().invoke(app, ["eval", "--policy", "terminate", "--sessions", SESSIONS, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "metrics.json").read_text())["per_type"]["terminate"]["exact_acc"] == 1.0
    assert "Exact Action Acc." in result.output


def test_cli_eval_rejects_bad_options(tmp_path):
    result = CliRunner().invoke(app, ["eval", "--policy", "random", "--temperatures", "0.6,x", "--out", str(tmp_path)])
    assert result.exit_code != 0


@pytest.mark.slow
def test_embedded_model_zero_shot_eval_runs_offline(tmp_path):
    from agents.evaluate import CPU_DEMO

    settings = {**CPU_DEMO, "limit": 2, "max_new_tokens": 16}
    metrics = run_eval(EvalConfig(**settings, out=tmp_path, progress=False))
    assert metrics["n_steps"] == 2 and metrics["run"]["policy"] == "smollm2"
    assert (tmp_path / "report.md").is_file() and (tmp_path / "predictions.jsonl").is_file()


def test_steps_whose_fixed_prompt_cannot_fit_score_zero_and_are_counted(tmp_path):
    """A budget below the instructions + action history: every step is over budget, the run still ends."""
    metrics = run_eval(
        EvalConfig(policy="tiny-random", sessions=SESSIONS, out=tmp_path, limit=3, context_window=64, max_new_tokens=4, greedy=True, progress=False)
    )
    assert metrics["n_steps"] == 3 and metrics["tokens"]["steps_over_budget"] == 3
    assert metrics["reward"]["reward/total"] == 0.0 and metrics["format_ok"] == 0.0
    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert all("token" in p["policy_error"] and p["text"] == "" for p in predictions)


class _Interrupted(Exception):
    pass


def test_an_interrupted_eval_resumes_without_asking_answered_steps_and_shows_no_stale_result(tmp_path, monkeypatch):
    """A fresh eval first removes an earlier eval's results; --resume asks the policy only the steps
    predictions.jsonl lacks, and refuses another eval's directory."""
    import agents.evaluate as evaluate_module
    from agents.policies import HeuristicPolicy

    out = tmp_path / "eval"
    config = EvalConfig(policy="heuristic", sessions="bundled:test", limit=30, batch_size=4, out=out, progress=False)
    complete = run_eval(config)
    asked: list[tuple[str, int]] = []

    class Counting(HeuristicPolicy):
        def __init__(self, stop_after=None):
            super().__init__()
            self.stop_after = stop_after

        def act(self, observations):
            if self.stop_after is not None and len(asked) >= self.stop_after:
                raise _Interrupted
            asked.extend((o["session_id"], int(o["step_index"])) for o in observations)
            return super().act(observations)

    monkeypatch.setattr(evaluate_module, "make_policy", lambda *args, **kwargs: Counting(stop_after=12))
    with pytest.raises(_Interrupted):
        run_eval(config)
    assert not (out / "metrics.json").exists() and not (out / "report.md").exists()
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 12
    first_run = list(asked)

    monkeypatch.setattr(evaluate_module, "make_policy", lambda *args, **kwargs: Counting())
    resumed = run_eval(config, resume=True)
    assert len(asked) == 30 and len(set(asked)) == 30 and set(asked[12:]).isdisjoint(first_run)
    assert resumed["resumed_steps"] == 12 and resumed["exact_acc"] == complete["exact_acc"]
    assert [json.loads(line)["step"] for line in (out / "predictions.jsonl").read_text().splitlines()] == \
        [r["step"] for r in evaluate_policy(HeuristicPolicy(), "bundled:test", limit=30, progress=False)["predictions"]]

    with pytest.raises(ValueError, match="other settings.*limit: 30 -> 31"):
        run_eval(EvalConfig(policy="heuristic", sessions="bundled:test", limit=31, out=out, progress=False), resume=True)


def test_a_shipped_policy_is_evaluated_on_the_prompts_it_was_trained_on_unless_told_otherwise():
    for name in ("smollm2-sft", "smollm2-shop-r1"):
        config = EvalConfig(policy=name)
        assert (config.context, config.context_window, config.max_new_tokens) == ("latest", 1024, 96)
    assert EvalConfig(policy="smollm2-sft", context="whole", max_new_tokens=128).context == "whole"
    assert EvalConfig(policy="smollm2-sft", context="whole", max_new_tokens=128).max_new_tokens == 128
    other = EvalConfig(policy="heuristic")
    assert (other.context, other.context_window, other.max_new_tokens) == ("whole", 2048, 256)
