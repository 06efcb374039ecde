"""Regressions of the data and env half of the reliability review: odd data and odd numbers from
outside either work end to end or fail with a message naming where and what to do.

One section per class of failure: what loads must write back (lone surrogates), numbers from
outside, cost bounded by the budget, data printed as terminal markup, silent choices, errors with
a place, envs that share sessions.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from agents.evaluate import EvalConfig, evaluate_policy, run_eval, write_predictions
from agents.policies import PolicyOutput
from shop_env.atomic_io import append_jsonl, read_jsonl_records, write_json
from shop_env.loaders import load_sessions, write_opera_parquet
from shop_env.replay_env import SessionReplayEnv
from shop_env.response_format import format_response
from shop_env.rewards import RewardConfig, max_reward, score_response
from shop_env.session import Action, Session, SessionFormatError, Step, read_jsonl, write_jsonl

from conftest import FIXTURES

LONE = "\ud83d"
"""Half of a surrogate pair: JSON can escape it ("\\ud83d"), UTF-8 cannot encode it."""


def surrogate_session_line() -> str:
    """One canonical session whose id, persona, page, gold name and text, rationale and extras hold
    lone surrogates, as JSON escapes (the only way a UTF-8 file can carry them)."""
    return json.dumps(
        {
            "session_id": f"s{LONE}",
            "source": "synthetic",
            "persona": f"likes {LONE}",
            "steps": [
                {
                    "observation": f'<html><input name="header.search_box.search_input"/>{LONE}</html>',
                    "url": None,
                    "action": {"type": "type_and_submit", "name": "header.search_box.search_input", "text": f"shoes {LONE}"},
                    "rationale": f"I want {LONE}",
                    "timestamp": None,
                    f"note{LONE}": [LONE, {"k": LONE}],
                },
                {
                    "observation": f"<html><button name='a.{LONE}'>A</button></html>",
                    "url": None,
                    "action": {"type": "click", "name": f"a.{LONE}"},
                    "rationale": None,
                    "timestamp": None,
                },
                {"observation": "<html></html>", "url": None, "action": {"type": "terminate"}, "rationale": None, "timestamp": None},
            ],
        }
    )


@pytest.fixture
def surrogate_sessions_path(tmp_path):
    path = tmp_path / "surrogates.jsonl"
    path.write_text(surrogate_session_line() + "\n", encoding="ascii")
    return path


# ---- 4. whatever loads must write back; whatever a model emits must be recorded ----


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz"])
def test_sessions_with_lone_surrogates_write_back_unchanged(surrogate_sessions_path, tmp_path, name):
    sessions = read_jsonl(surrogate_sessions_path)
    assert sessions[0].steps[1].action.name == f"a.{LONE}"
    out = write_jsonl(sessions, tmp_path / name)
    assert read_jsonl(out) == sessions
    opener = gzip.open if name.endswith(".gz") else open
    with opener(out, "rt", encoding="utf-8") as handle:
        assert json.loads(handle.readline()) == json.loads(surrogate_session_line())


def test_valid_unicode_is_still_written_as_plain_utf8(tmp_path):
    path = write_json(tmp_path / "m.json", {"text": "café 日本語 😀"})
    assert "café 日本語 😀" in path.read_text(encoding="utf-8")


def test_logs_and_json_files_record_lone_surrogates(tmp_path):
    append_jsonl(tmp_path / "log.jsonl", {"rationale": LONE})
    assert read_jsonl_records(tmp_path / "log.jsonl") == [{"rationale": LONE}]
    assert json.loads(write_json(tmp_path / "m.json", {LONE: LONE}).read_text(encoding="utf-8")) == {LONE: LONE}


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029"])
def test_logs_read_back_text_that_str_splitlines_would_cut(tmp_path, separator):
    """Found by the fuzz: the reader split lines where str.splitlines does, inside JSON strings."""
    append_jsonl(tmp_path / "log.jsonl", {"rationale": f"a{separator}b"})
    append_jsonl(tmp_path / "log.jsonl", {"step": 2})
    assert read_jsonl_records(tmp_path / "log.jsonl") == [{"rationale": f"a{separator}b"}, {"step": 2}]


def test_shopcart_output_refuses_a_step_extra_it_could_not_read_back(tmp_path):
    """Found by the fuzz: a step extra named like a Shop-CART key ("persona", "step") overwrote it."""
    from shop_env.loaders import shopcart_rows

    session = Session("s", [Step("<p/>", Action("terminate"), extra={"persona": "from the step"})], persona="P")
    with pytest.raises(SessionFormatError, match=r"step 0, field 'persona': .*collides with the Shop-CART key"):
        shopcart_rows(session)


def test_an_eval_over_surrogate_data_writes_every_prediction(surrogate_sessions_path, tmp_path):
    """The oracle repeats the gold (raw surrogates in its response); the reported crash came only when
    predictions.jsonl was written, after the whole run."""
    metrics = run_eval(EvalConfig(policy="oracle", sessions=str(surrogate_sessions_path), out=tmp_path / "eval", progress=False))
    assert metrics["exact_acc"] == 1.0
    records = read_jsonl_records(tmp_path / "eval" / "predictions.jsonl")
    assert [record["gold"] for record in records] == [step.action.to_dict() for step in read_jsonl(surrogate_sessions_path)[0].steps]
    assert records[1]["action"] == {"type": "click", "name": f"a.{LONE}"}


class EscapedSurrogatePolicy:
    """A model that writes a lone surrogate as the six ASCII characters of its JSON escape."""

    def act(self, observations):
        response = json.dumps({"rationale": LONE, "action": {"type": "click", "name": f"a.{LONE}"}})
        assert LONE not in response and "\\ud83d" in response
        return [PolicyOutput.from_text(response) for _ in observations]


def test_a_models_escaped_surrogate_is_recorded(surrogate_sessions_path, tmp_path):
    result = evaluate_policy(EscapedSurrogatePolicy(), read_jsonl(surrogate_sessions_path), progress=False)
    write_predictions(tmp_path / "predictions.jsonl", result["predictions"])
    records = read_jsonl_records(tmp_path / "predictions.jsonl")
    assert records == json.loads(json.dumps(result["predictions"]))
    assert records[1]["action"] == {"type": "click", "name": f"a.{LONE}"} and records[1]["reward"] > 1000


def test_prompts_show_lone_surrogates_as_escapes(surrogate_sessions_path, tiny_tokenizer):
    """Tokenizers refuse lone surrogates; the prompt shows their escapes and counts exactly."""
    from agents.context_builder import build_prompt, count_tokens
    from shop_env.replay_env import observation_at

    session = read_jsonl(surrogate_sessions_path)[0]
    for index in range(len(session) + 1):
        built = build_prompt(observation_at(session, index), tiny_tokenizer, context_window=4096)
        assert LONE not in built.text and "\\ud83d" in built.text
        assert built.n_tokens == count_tokens(built.text, tiny_tokenizer)


def test_parquet_output_names_the_cell_it_cannot_store(surrogate_sessions_path, tmp_path):
    with pytest.raises(SessionFormatError, match=r"step 0, field 'session_id': .*lone surrogate.*write canonical JSON Lines"):
        write_opera_parquet(read_jsonl(surrogate_sessions_path), tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    clean = Session.from_dict({**json.loads(surrogate_session_line()), "session_id": "s"})
    with pytest.raises(SessionFormatError, match=r"step 0, field 'simplified_html': session 's': .*escape: <html><input"):
        write_opera_parquet([clean], tmp_path / "out.parquet")


def test_loaded_surrogate_sessions_convert_to_every_jsonl_format(surrogate_sessions_path, tmp_path):
    from shop_env.loaders import convert_sessions

    sessions = load_sessions(surrogate_sessions_path)
    for to in ("jsonl", "shopcart"):
        convert_sessions(surrogate_sessions_path, tmp_path / f"{to}.jsonl", to=to)
        assert load_sessions(tmp_path / f"{to}.jsonl") == sessions


# ---- 5. numbers from outside: clamped or refused with a reason, never raised, never out of [0, max] ----


class BadFloat:
    def __float__(self):
        raise ZeroDivisionError("broken __float__")


HOSTILE_CERTAINTIES = [
    10**400, -(10**400), 1e308, 3.5e38, 1e39, 1000.0000001, float("inf"), float("nan"), -1e-300,
    np.float64(1e300), np.float32(3e38), Fraction(10**400, 3), Decimal("1e400"), Decimal("NaN"), BadFloat(),
]


@pytest.mark.parametrize("certainty", HOSTILE_CERTAINTIES, ids=lambda value: type(value).__name__ + str(value)[:12])
def test_env_step_keeps_any_self_certainty_within_the_bound(fixture_sessions, certainty):
    env = SessionReplayEnv(fixture_sessions)
    env.reset(options={"index": 0})
    gold = env.session.steps[0].action
    _, reward, _, _, info = env.step({"response": format_response("r", gold), "self_certainty": certainty})
    assert reward == max_reward(gold) and info["reward"].rationale == 0.0
    assert "rationale reward set to 0" in info["reward"].error
    assert 0 <= reward <= env.reward_config.upper_bound and np.isfinite(np.float32(reward))


def test_the_largest_accepted_self_certainty_pays_its_share():
    from shop_env.rewards import MAX_SELF_CERTAINTY

    gold = Action("type_and_submit", name="header.search_box.search_input", text="running shoes")
    text = format_response("r", gold)
    assert score_response(text, gold, self_certainty=MAX_SELF_CERTAINTY).total == pytest.approx(RewardConfig().upper_bound)
    assert score_response(text, gold, self_certainty=np.float32(26.0)).rationale == pytest.approx(0.13)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alpha": 10**400}, r"RewardConfig.alpha = 1000.*\.\.\.: expected a finite number"),
        ({"dars_factor": 1e308}, "overflows float32"),
        ({"alpha": 1e36}, "overflows float32"),
        ({"format_weight": 1e39}, "overflows float32"),
    ],
)
def test_reward_configs_whose_rewards_overflow_float32_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        RewardConfig(**overrides)


@pytest.mark.parametrize("temperature", [10**400, 1e-320, float("nan"), 0, -1], ids=lambda value: str(value)[:12])
def test_self_certainty_temperature_out_of_range_is_a_value_error(temperature):
    import torch

    from shop_env.self_certainty import self_certainty

    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        self_certainty(torch.zeros(1, 2, 4), torch.ones(1, 2, dtype=torch.bool), temperature)


# ---- 6. cost bounded by the budget, not by the input ----


def test_rouge_on_long_values_is_exact_and_needs_no_quadratic_table():
    """A 3,000-token gold text: rouge-score's n x m table took ~70 MB (8,000 tokens: ~520 MB, 50 s)."""
    import tracemalloc

    gold_words = [f"w{i}" for i in range(3_000)]
    predicted = [word if i % 4 else "other" for i, word in enumerate(gold_words)]  # LCS: the 2,250 kept
    gold = Action("type_and_submit", name="header.search_box.search_input", text=" ".join(gold_words))
    response = format_response("r", Action("type_and_submit", name=gold.name, text=" ".join(predicted)))
    env = SessionReplayEnv([Session("long", [Step("<html/>", gold), Step("<html/>", Action("terminate"))])])
    env.reset(options={"index": 0})
    tracemalloc.start()
    try:
        _, reward, _, _, info = env.step(response)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info["reward"].value == pytest.approx(0.1 + 1000 * 0.75)
    assert peak < 8 * 2**20, f"scoring one step took {peak / 2**20:.0f} MB"


def test_a_huge_page_costs_about_a_budgets_worth_of_tokenization(tiny_tokenizer):
    """The reported case: a 20 MB page took 98 s and 4.7 GB in one eval step, the whole page tokenized."""
    from agents.context_builder import build_prompt, truncation_note
    from benchmarks.context_building import CountingTokenizer
    from shop_env.replay_env import observation_at

    row = '<div><button name="search_results.item_{}.view_product">Item {}</button></div>\n'
    page = "".join(row.format(i, i) for i in range(40_000))  # 3 MB
    session = Session("big", [Step(page, Action("terminate")), Step(page, Action("terminate"))])
    counting = CountingTokenizer(tiny_tokenizer)
    built = build_prompt(observation_at(session, 1), counting, context_window=2048)
    assert built.n_tokens <= 2048 and built.dropped.pages == 1
    assert truncation_note(built.dropped.page_chars) in built.text
    assert counting.chars < len(page) / 2, f"{counting.chars:,} characters tokenized"
    from agents.context_builder import MAX_CHARS_PER_TOKEN

    assert counting.chars < 8 * MAX_CHARS_PER_TOKEN * 2048, f"{counting.chars:,} characters tokenized"


# ---- 7. text from the data is printed as written, never read as terminal markup ----

MARKUP = "[/] [black]hidden[/black] [bold]"


def markup_session() -> Session:
    page = (f"<html><head><title>Deals {MARKUP}</title></head><body>"
            f"<button name='search_results.x[/].view_product'>Buy</button></body></html>")
    return Session(
        f"s{MARKUP}",
        [
            Step(page, Action("click", name="search_results.x[/].view_product"), rationale=f"Cheap {MARKUP} {LONE}"),
            Step(page, Action("terminate"), rationale="ends with a backslash \\"),
        ],
        persona=f"A buyer {MARKUP}",
    )


def test_replay_prints_data_as_written(tmp_path):
    from rich.console import Console

    from agents.policies import OraclePolicy
    from shop_env.replay import replay_session

    session = markup_session()
    with open(tmp_path / "out.txt", "w", encoding="utf-8") as handle:  # strict UTF-8, like a terminal
        console = Console(file=handle, width=400, record=True)
        result = replay_session([session], OraclePolicy([session]), console=console)
    text = console.export_text()
    assert result.total == result.max_total
    for expected in (f"persona: A buyer {MARKUP}", f"Deals {MARKUP}", f"Cheap {MARKUP} \\ud83d",
                     "click(search_results.x[/].view_product)", f"session s{MARKUP}", "ends with a backslash \\"):
        assert expected in text, expected


def test_cli_prints_paths_as_typed(tmp_path):
    from typer.testing import CliRunner

    from shop_r1.cli import app

    destination = tmp_path / "[v2]" / "[black]out.jsonl"
    result = CliRunner().invoke(app, ["convert", str(FIXTURES / "real_format_sessions.jsonl"), str(destination)])
    assert result.exit_code == 0, result.output
    assert str(destination) in result.output.replace("\n", "")


# ---- 8. no silent choices: refuse, with what to do ----


def test_a_directory_of_parquet_and_jsonl_is_refused_naming_both(tmp_path):
    sessions = read_jsonl(FIXTURES / "real_format_sessions.jsonl")
    write_jsonl(sessions[:1], tmp_path / "a.jsonl")
    write_opera_parquet(sessions[1:], tmp_path / "b.parquet")
    with pytest.raises(SessionFormatError, match=r"\.parquet shards \(1\) and other session files \(a\.jsonl\).*format='opera'"):
        load_sessions(tmp_path)
    assert [s.session_id for s in load_sessions(tmp_path, format="opera")] == [sessions[1].session_id]
    (tmp_path / "b.parquet").unlink()
    with pytest.raises(SessionFormatError, match="pass one of its files: a.jsonl"):
        load_sessions(tmp_path)


@pytest.mark.parametrize("spec", ["", "  "])
def test_an_empty_sessions_path_is_refused_not_read_as_the_current_directory(spec, tmp_path, monkeypatch):
    from shop_env.loaders import resolve_sessions

    write_opera_parquet(read_jsonl(FIXTURES / "real_format_sessions.jsonl"), tmp_path / "stray" / "x.parquet")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="empty sessions path"):
        resolve_sessions(spec)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"index": 1.9}, TypeError, "session index must be an integer, got float 1.9"),
        ({"index": True}, TypeError, "session index must be an integer"),
        ([1, 2], TypeError, "reset options must be a dict"),
        ({"idx": 1}, ValueError, "unknown reset option"),
        ({"index": 0, "session_id": "opera-like-0002"}, ValueError, "not both"),
    ],
)
def test_reset_options_are_checked_not_truncated_or_ignored(fixture_sessions, options, error, message):
    env = SessionReplayEnv(fixture_sessions)
    with pytest.raises(error, match=message):
        env.reset(options=options)
    assert env.reset(options={"index": np.int64(1)})[1]["session_id"] == fixture_sessions[1].session_id


@pytest.mark.parametrize("actions", ["xy", ("only one",), b"xy", 7])
def test_a_vector_env_refuses_anything_but_one_action_per_env(fixture_sessions, actions):
    import gymnasium as gym

    envs = gym.make_vec("ShopR1/SessionReplay-v0", num_envs=2, sessions=fixture_sessions)
    envs.reset(seed=0, options={"index": 0})
    with pytest.raises((TypeError, ValueError), match="one action per env|pass one per env"):
        envs.step(actions)
    rewards = envs.step(("garbage", "more garbage"))[1]
    assert list(rewards) == [0.0, 0.0]
    envs.close()


def test_a_reward_config_that_is_not_one_is_refused_at_make(fixture_sessions):
    import gymnasium as gym

    with pytest.raises(TypeError, match=r"reward_config must be a shop_env.rewards.RewardConfig .*RewardConfig\(\*\*"):
        gym.make("ShopR1/SessionReplay-v0", sessions=fixture_sessions, reward_config={"alpha": 1})


# ---- 9. errors name the file (and line) and say what to do ----

GOOD_LINE = json.dumps({"session_id": "a", "steps": [{"observation": "<p/>", "action": {"type": "terminate"}}]})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, r"nested too deeply .* flatten that value"),
        ("1" * 5_000, r"4300 digits.*store such a number as a string"),
    ],
    ids=["100k-deep array", "5000-digit integer"],
)
def test_unreadable_json_values_name_file_and_line(tmp_path, value, message):
    bad = json.dumps({"session_id": "b", "steps": [{"observation": "<p/>", "action": {"type": "terminate"}, "x": 0}]})
    path = tmp_path / "s.jsonl"
    path.write_text(GOOD_LINE + "\n" + bad.replace("0}]}", value + "}]}") + "\n", encoding="utf-8")
    with pytest.raises(SessionFormatError, match=rf"^{path}:2: .*{message}"):
        load_sessions(path)


def test_unreadable_json_in_parquet_and_shopcart_cells_names_the_row(tmp_path):
    from shop_env.loaders.opera import STEP_EXTRA_JSON_COLUMN

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(write_opera_parquet(read_jsonl(FIXTURES / "real_format_sessions.jsonl"), tmp_path / "a.parquet"))
    cells = ['{"x": ' + "1" * 5_000 + "}"] * table.num_rows
    table = table.set_column(table.column_names.index(STEP_EXTRA_JSON_COLUMN), STEP_EXTRA_JSON_COLUMN, pa.array(cells, pa.string()))
    pq.write_table(table, tmp_path / "a.parquet")
    with pytest.raises(SessionFormatError, match=r"a\.parquet row \d+, .*field 'step_extra_json': .*store such a number as a string"):
        load_sessions(tmp_path / "a.parquet")
    row = {"session_id": "s", "step": 0, "observation": "<p/>", "action": "[" * 50_000}
    (tmp_path / "rows.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(SessionFormatError, match=r"rows\.jsonl:1, step 0, field 'action': action is a string but JSON nested too deeply"):
        load_sessions(tmp_path / "rows.jsonl")


def test_a_symlink_loop_and_a_broken_symlink_are_named_as_such(tmp_path):
    (tmp_path / "loop.jsonl").symlink_to(tmp_path / "loop.jsonl")
    with pytest.raises(SessionFormatError, match=r"loop\.jsonl: a symlink loop .*point it at the sessions file"):
        load_sessions(tmp_path / "loop.jsonl")
    (tmp_path / "broken.jsonl").symlink_to(tmp_path / "gone.jsonl")
    with pytest.raises(SessionFormatError, match=r"broken\.jsonl: a broken symlink \(to .*gone\.jsonl"):
        load_sessions(tmp_path / "broken.jsonl")


def test_a_fifo_named_jsonl_is_refused_instead_of_waiting_forever(tmp_path):
    """The reader used to block until a writer opened the pipe (forever, in the reported case)."""
    import os
    import threading

    fifo = tmp_path / "sessions.jsonl"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed():  # should a reader open the pipe, every 2 s give it a session, so the test fails, not hangs
        while not stop.wait(2.0):
            with open(fifo, "w") as handle:
                handle.write(GOOD_LINE + "\n")

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        for read in (load_sessions, read_jsonl):
            with pytest.raises(SessionFormatError, match=r"sessions\.jsonl: a FIFO \(named pipe\), not a regular file"):
                read(fifo)
    finally:
        stop.set()
        released = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets a feeder waiting in open() finish
        feeder.join(timeout=10)
        os.close(released)


def test_format_hf_on_a_jsonl_file_says_which_format_to_pass(tmp_path):
    (tmp_path / "s.jsonl").write_text(GOOD_LINE + "\n", encoding="utf-8")
    with pytest.raises(SessionFormatError, match=r"s\.jsonl: not an Arrow file .*pass format 'jsonl' or 'shopcart' \(--from jsonl"):
        load_sessions(tmp_path / "s.jsonl", format="hf")


# ---- 11. envs that share a session list replay their own copies ----


def test_changing_shared_sessions_after_a_reset_changes_nothing_in_the_envs():
    sessions = read_jsonl(FIXTURES / "real_format_sessions.jsonl")
    first, second = SessionReplayEnv(sessions), SessionReplayEnv(sessions)
    original = [session.to_dict() for session in sessions]
    first.reset(options={"index": 0})
    # The caller edits the list both envs were given: an appended step (the cached history has no page
    # for it: IndexError at the old end) and a changed gold action on a page the env has shown.
    sessions[0].steps.append(Step("<html>new</html>", Action("terminate")))
    sessions[0].steps[1].action = Action("click", name="somewhere.else")
    sessions[0].steps[2].observation = "<html>changed</html>"
    second.reset(options={"index": 0})
    for env in (first, second):
        observation, _ = env.reset(options={"index": 0})
        terminated = False
        while not terminated:
            step = env.session.steps[int(observation["step_index"])]
            assert observation["page"] == step.observation
            observation, reward, terminated, _, info = env.step(format_response("r", step.action))
            assert info["gold_action"] == step.action and reward == max_reward(step.action)
        assert int(observation["step_index"]) == len(original[0]["steps"])
        assert [session.to_dict() for session in env.sessions] == original


def test_session_copies_share_nothing_mutable():
    session = Session.from_dict(json.loads(surrogate_session_line()))
    twin = session.copy()
    assert twin == session and twin.steps is not session.steps
    twin.steps[0].extra[f"note{LONE}"][1]["k"] = "changed"
    twin.steps[0].rationale = "changed"
    twin.extra["added"] = 1
    assert session.to_dict() == json.loads(surrogate_session_line())
