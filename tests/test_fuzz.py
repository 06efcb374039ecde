"""Fuzzing: whatever a half-trained model emits, the parser, the reward and the env never raise, and
every reward is finite and within [0, max]; corrupted data files fail loudly at the right place; what
loads or is emitted (lone surrogates, numeric extremes included) is written back and reads back.

Deterministic (derandomize=True, no example database, no deadline) so CI always tries the same cases.
`SHOP_R1_FUZZ_EXAMPLES` sets the examples per property (default 200); for a long run:

    SHOP_R1_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_fuzz.py --hypothesis-show-statistics
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shop_env.metrics import evaluate
from shop_env.response_format import (
    EXAMPLE_RESPONSES,
    MAX_RESPONSE_CHARS,
    format_response,
    json_body_span,
    parse_action_object,
    parse_response,
)
from shop_env.atomic_io import read_jsonl_records
from shop_env.rewards import (
    ABLATIONS,
    MAX_SELF_CERTAINTY,
    RewardBreakdown,
    RewardConfig,
    _breakdown,
    max_reward,
    score_action,
    score_response,
)
from shop_env.session import (
    ACTION_TYPES,
    CLICK,
    SESSION_KEYS,
    STEP_KEYS,
    TERMINATE,
    TYPE_AND_SUBMIT,
    Action,
    Session,
    read_jsonl,
    write_jsonl,
)

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"
EXAMPLES = int(os.environ.get("SHOP_R1_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
TEN_MB = 10 * 2**20

CONFIGS = [
    RewardConfig(),
    *(RewardConfig.ablation(name) for name in ABLATIONS),
    RewardConfig(rouge_threshold=0.0),
    RewardConfig(rouge_threshold=1.0),
]
"""The paper's config, every reward ablation, and both threshold extremes (0 runs the full LCS)."""

# Every code point, lone surrogates included (hypothesis leaves category Cs out by default).
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=300)
lone_surrogates = st.text(st.characters(categories=("Cs",)), min_size=1, max_size=3)
surrogate_text = st.tuples(any_text, lone_surrogates, any_text).map("".join)
"""Text that surely holds a lone surrogate (any_text only sometimes does)."""
extreme_numbers = st.one_of(
    st.sampled_from([0.0, -0.0, 5e-324, 1e308, -1e308, float("inf"), float("-inf"), float("nan")]),
    st.integers(min_value=10**300, max_value=10**4299),  # up to 4300 digits: the most Python reads from JSON
    st.integers(max_value=-(10**300), min_value=-(10**4299)),
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text | extreme_numbers | surrogate_text
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
element_names = st.lists(
    st.text(st.characters(categories=("Ll", "Nd"), include_characters="_"), min_size=1, max_size=12),
    min_size=1,
    max_size=4,
).map(".".join)
gold_actions = st.one_of(
    st.builds(Action, st.just(CLICK), name=element_names | st.text(any_char, min_size=1, max_size=40) | surrogate_text),
    st.builds(Action, st.just(TYPE_AND_SUBMIT), name=element_names | surrogate_text, text=any_text | surrogate_text),
    st.just(Action(TERMINATE)),
)
configs = st.sampled_from(CONFIGS)


@st.composite
def mutated_responses(draw) -> str:
    """A valid response (for a drawn action or a paper example), then a few random edits."""
    kind = draw(st.sampled_from(["example", "raw", "escaped"]))
    if kind == "example":
        text = json.dumps(draw(st.sampled_from(list(EXAMPLE_RESPONSES.values()))))
    elif kind == "raw":  # lone surrogates as characters
        text = format_response(draw(any_text | surrogate_text), draw(gold_actions))
    else:  # as a model writes them: JSON escapes such as \ud83d
        action = draw(gold_actions)
        text = json.dumps({"rationale": draw(any_text | surrogate_text), "action": action.response_object})
    for _ in range(draw(st.integers(0, 4))):
        edit = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "truncate", "fence", "swap_type"]))
        at = draw(st.integers(0, len(text)))
        if edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif edit == "insert":
            text = text[:at] + draw(st.text(any_char, min_size=1, max_size=10)) + text[at:]
        elif edit == "replace" and at < len(text):
            text = text[:at] + draw(any_char) + text[at + 1 :]
        elif edit == "duplicate":
            text = text[:at] + text[at : at + 40] + text[at:]
        elif edit == "truncate":
            text = text[:at]
        elif edit == "fence":
            text = "```json\n" + text + "\n```"
        elif edit == "swap_type":
            text = text.replace(draw(st.sampled_from(ACTION_TYPES)), draw(any_text | st.sampled_from(ACTION_TYPES)), 1)
    return text


@st.composite
def nested_json(draw) -> str:
    """JSON nested far past the parser's recursion limit, alone or where the response keeps its action."""
    depth = draw(st.integers(1, 60_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"type":', "}")]))
    close = draw(st.booleans())
    nested = opener * depth + ("0" + closer * depth if close else "")
    place = draw(st.sampled_from(["alone", "action", "name", "rationale"]))
    if place == "alone":
        return nested
    if place == "action":
        return '{"rationale": "x", "action": ' + nested + "}"
    if place == "name":
        return '{"rationale": "x", "action": {"type": "click", "name": ' + nested + "}}"
    return '{"rationale": ' + nested + ', "action": {"type": "terminate"}}'


invalid_unicode = st.binary(max_size=200).map(lambda raw: raw.decode("utf-8", errors="surrogateescape"))
responses = st.one_of(any_text, mutated_responses(), nested_json(), invalid_unicode)
non_strings = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=50), json_values)


def check_breakdown(breakdown: RewardBreakdown, gold: Action, config: RewardConfig, certainty=None) -> None:
    """Every term finite and >= 0; the total within [0, max_reward + alpha x s], s in [0, MAX_SELF_CERTAINTY],
    so within [0, config.upper_bound], finite in float32."""
    assert isinstance(breakdown, RewardBreakdown)
    for key, value in breakdown.as_dict().items():
        assert isinstance(value, float) and math.isfinite(value) and value >= 0, (key, value)
    bound = max_reward(gold, config)
    if breakdown.self_certainty is not None:
        assert certainty is not None and breakdown.self_certainty == float(certainty)
        assert 0 <= breakdown.self_certainty <= MAX_SELF_CERTAINTY
        bound += config.alpha * breakdown.self_certainty
    assert breakdown.total <= bound * (1 + 1e-12), (breakdown.total, bound)
    assert breakdown.total <= config.upper_bound * (1 + 1e-12) and np.isfinite(np.float32(breakdown.total))


@FUZZ
@given(st.one_of(responses, non_strings))
def test_parse_response_never_raises_and_round_trips(text):
    parsed = parse_response(text)
    assert parsed.ok == (parsed.error is None)
    if parsed.ok:
        assert isinstance(parsed.rationale, str) and parsed.action.type in ACTION_TYPES
        again = parse_response(format_response(parsed.rationale, parsed.action))
        assert (again.rationale, again.action) == (parsed.rationale, parsed.action)
    else:
        assert isinstance(parsed.error, str) and parsed.error


def reference_parse(text: str) -> tuple[str | None, Action | None]:
    """The format read the plain way: json.loads on the body, no fast paths."""
    if len(text) > MAX_RESPONSE_CHARS:
        return None, None
    start, end = json_body_span(text)
    try:
        data = json.loads(text[start:end])
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict) or not isinstance(data.get("rationale"), str):
        return None, None
    return data["rationale"], parse_action_object(data.get("action"))[0]


@FUZZ
@given(responses)
def test_parse_response_agrees_with_a_plain_json_loads_reading(text):
    """The early format checks (prose, a cut-off object) only say why sooner; what parses is json.loads'."""
    parsed = parse_response(text)
    rationale, action = reference_parse(text)
    assert parsed.action == action
    if action is not None:
        assert parsed.rationale == rationale


@FUZZ
@given(st.one_of(responses, gold_actions.flatmap(lambda gold: st.just(format_response("r", gold)))), gold_actions, configs)
def test_a_copied_gold_action_is_scored_term_by_term_without_its_extra_keys(text, gold, config):
    gold = Action(gold.type, gold.name, gold.text, extra={"id": "kept out of predictions"})
    got = score_response(text, gold, config)
    assert got == _breakdown(parse_response(text), gold, config, None)
    assert got.predicted_action is None or not got.predicted_action.extra


@FUZZ
@given(responses, gold_actions, configs)
def test_score_response_is_finite_and_bounded(text, gold, config):
    breakdown = score_response(text, gold, config)
    check_breakdown(breakdown, gold, config)
    parsed = parse_response(text)
    if not parsed.ok:
        assert breakdown.total == 0 and breakdown.error == parsed.error


@FUZZ
@given(gold_actions, configs, any_text)
def test_copying_the_human_earns_exactly_the_maximum(gold, config, rationale):
    breakdown = score_response(format_response(rationale, gold), gold, config)
    check_breakdown(breakdown, gold, config)
    assert breakdown.total == pytest.approx(max_reward(gold, config), rel=1e-12)


self_certainties = st.one_of(
    st.none(),
    st.floats(),
    st.floats(0, 2 * MAX_SELF_CERTAINTY),
    st.integers(-(10**30), 10**30),
    extreme_numbers,
    st.integers(min_value=10**308, max_value=10**500),  # past float range: float() overflows
    st.floats(width=32).map(np.float32),
    st.decimals(),
    st.fractions(),
    any_text,
    st.booleans(),
)


@FUZZ
@given(responses, gold_actions, configs, self_certainties)
def test_self_certainty_of_any_value_keeps_the_reward_finite(text, gold, config, certainty):
    check_breakdown(score_response(text, gold, config, self_certainty=certainty), gold, config, certainty)


@FUZZ
@given(st.one_of(json_values, gold_actions, non_strings), gold_actions, configs)
def test_score_action_on_any_object(predicted, gold, config):
    check_breakdown(score_action(predicted, gold, config), gold, config)


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.none(), gold_actions, json_values), gold_actions), min_size=1, max_size=20))
def test_evaluate_rates_stay_in_unit_interval(pairs):
    preds, golds = zip(*pairs)
    preds = [p if p is None or isinstance(p, (Action, dict)) else None for p in preds]
    result = evaluate(preds, golds)
    for key in ("exact_acc", "type_acc", "type_macro_f1"):
        assert 0.0 <= result[key] <= 1.0
    assert result["exact_acc"] <= result["type_acc"]
    assert result["counts"]["total"] == len(pairs)


TEN_MB_RESPONSES = {
    "plain": "x" * TEN_MB,
    "words": "buy " * (TEN_MB // 4),
    "open_brackets": "[" * TEN_MB,
    "lone_surrogates": "\ud800" * TEN_MB,
    "long_rationale": json.dumps({"rationale": "y" * TEN_MB, "action": {"type": "terminate"}}),
    "long_name": json.dumps({"rationale": "r", "action": {"type": "click", "name": "a " * (TEN_MB // 2)}}),
    "fenced": "```json\n" + "z" * TEN_MB + "\n```",
}


@pytest.mark.parametrize("kind", list(TEN_MB_RESPONSES))
def test_ten_megabyte_responses_fail_the_format_cleanly(kind):
    text = TEN_MB_RESPONSES[kind]
    assert len(text) >= TEN_MB
    parsed = parse_response(text)
    assert not parsed.ok and "limit" in parsed.error
    gold = Action(CLICK, name="search_results.trail_runner.view_product")
    breakdown = score_response(text, gold)
    assert breakdown.total == 0 and breakdown.error == parsed.error


@pytest.mark.parametrize("config", [RewardConfig(), RewardConfig(rouge_threshold=0.0)], ids=["paper", "threshold0"])
def test_action_dict_values_are_bounded_like_responses(config):
    """Actions given as objects skip parse_response, so their values have the same length limit."""
    gold = Action(TYPE_AND_SUBMIT, name="header.search_box.search_input", text="running shoes")
    huge = "search_results " * (TEN_MB // 15)
    breakdown = score_action({"type": TYPE_AND_SUBMIT, "name": huge, "text": huge}, gold, config)
    assert breakdown.total == 0 and "limit" in breakdown.error
    longest = "running shoes " * (MAX_RESPONSE_CHARS // 14)
    breakdown = score_action({"type": TYPE_AND_SUBMIT, "name": gold.name, "text": longest}, gold, config)
    check_breakdown(breakdown, gold, config)
    assert breakdown.error is None and breakdown.type == config.type_weight


# ---- the env: every kind of agent output, whole episodes ----

agent_outputs = st.one_of(
    responses,
    non_strings,
    gold_actions,
    st.fixed_dictionaries(
        {"response": st.one_of(responses, non_strings)}, optional={"self_certainty": json_scalars | self_certainties}
    ),
)


@pytest.fixture(scope="module", params=["whole", "latest"])
def env(request):
    from shop_env.replay_env import SessionReplayEnv

    return SessionReplayEnv(read_jsonl(FIXTURE), context=request.param)


@FUZZ
@given(outputs=st.lists(agent_outputs, min_size=1, max_size=25), first=st.integers(0, 100))
def test_env_step_never_raises_on_agent_output(env, outputs, first):
    observation, _ = env.reset(options={"index": first % len(env.sessions)})
    for output in outputs:
        gold = env.session.steps[int(observation["step_index"])].action
        observation, reward, terminated, truncated, info = env.step(output)
        assert env.observation_space.contains(observation)
        certainty = output.get("self_certainty") if isinstance(output, dict) and "response" in output else None
        check_breakdown(info["reward"], gold, env.reward_config, certainty)
        assert reward == info["reward"].total and not truncated
        if info["parse_error"] is not None:
            assert observation["last_action_error"] == info["parse_error"]
        if terminated:
            observation, _ = env.reset(options={"index": (first := first + 1) % len(env.sessions)})


# ---- what is emitted or loaded is written back: lone surrogates, numeric extremes ----


@FUZZ
@given(responses, gold_actions, self_certainties)
def test_whatever_a_model_emits_is_recorded(tmp_path_factory, text, gold, certainty):
    from agents.evaluate import write_predictions

    breakdown = score_response(text, gold, self_certainty=certainty)
    record = {
        "text": text if isinstance(text, str) else repr(text),
        "action": None if breakdown.predicted_action is None else breakdown.predicted_action.to_dict(),
        "gold": gold.to_dict(),
        "parse_error": breakdown.error,
        "reward": breakdown.total,
        "reward_components": breakdown.as_dict(),
    }
    path = tmp_path_factory.mktemp("predictions") / "predictions.jsonl"
    write_predictions(path, [record])
    # As JSON reads it: two surrogates that happen to pair up come back as the one character they encode.
    assert read_jsonl_records(path) == json.loads(json.dumps([record]))


step_extra_keys = st.one_of(any_text, st.sampled_from(["persona", "step", "context", "session_id", "click_type"]))


@st.composite
def odd_sessions(draw) -> list[Session]:
    """Sessions whose every text may hold lone surrogates and whose extras hold numeric extremes."""
    sessions = []
    for index in range(draw(st.integers(1, 3))):
        steps = [
            {
                "observation": draw(any_text | surrogate_text),
                "action": draw(gold_actions.filter(lambda action: action.name is None or action.name.strip())).to_dict(),
                "rationale": draw(st.none() | any_text | surrogate_text),
                "url": draw(st.none() | any_text),
                "timestamp": None,
                **draw(st.dictionaries(step_extra_keys.filter(lambda key: key not in STEP_KEYS), json_values, max_size=3)),
            }
            for _ in range(draw(st.integers(1, 4)))
        ]
        raw = {
            "session_id": f"{index}-" + draw(any_text | surrogate_text),
            "source": draw(st.none() | any_text),
            "persona": draw(st.none() | any_text | surrogate_text),
            "steps": steps,
            **draw(st.dictionaries(any_text.filter(lambda key: key not in SESSION_KEYS), json_values, max_size=3)),
        }
        sessions.append(Session.from_dict(raw))
    return sessions


def as_text(sessions) -> list[str]:
    """Sessions as JSON text, so NaN compares equal to NaN."""
    return [json.dumps(session.to_dict(), sort_keys=True) for session in sessions]


def refusal(sessions: list[Session], to: str) -> str | None:
    """Why writing `sessions` as `to` must be refused (None: it must round-trip)."""
    from shop_env.atomic_io import writable
    from shop_env.loaders.opera import _OPERA_STEP_COLUMNS
    from shop_env.loaders.shopcart import SHOPCART_KEYS

    steps = [step for session in sessions for step in session.steps]
    if to == "shopcart" and any(key in SHOPCART_KEYS for step in steps for key in step.extra):
        return "collides"
    if to == "opera":
        if any(key in _OPERA_STEP_COLUMNS or key in ("semantic_id", "input_text") for step in steps for key in step.extra):
            return "collides"
        if any(text != writable(text) for text in json.dumps([s.to_dict() for s in sessions], ensure_ascii=False).split("\n")):
            return "lone surrogate"
    return None


@FUZZ
@given(sessions=odd_sessions(), to=st.sampled_from(["jsonl", "jsonl.gz", "shopcart", "opera"]))
def test_sessions_that_load_write_back_unchanged(tmp_path_factory, sessions, to):
    from shop_env.loaders import convert_sessions, load_sessions
    from shop_env.session import SessionFormatError

    folder = tmp_path_factory.mktemp("roundtrip")
    source = write_jsonl(sessions, folder / "in.jsonl")
    loaded = load_sessions(source)
    assert as_text(loaded) == as_text(sessions)
    destination = folder / {"jsonl": "out.jsonl", "jsonl.gz": "out.jsonl.gz", "shopcart": "rows.jsonl", "opera": "out.parquet"}[to]
    # Judged on what was read back: two drawn surrogates that pair up read back as one valid character.
    expected_refusal = refusal(loaded, to)
    try:
        convert_sessions(source, destination, to="jsonl" if to == "jsonl.gz" else to)
    except SessionFormatError as err:
        assert expected_refusal is not None and expected_refusal in str(err), err
        return
    assert expected_refusal is None
    assert as_text(load_sessions(destination)) == as_text(sessions)


# ---- loaders: corrupted files fail loudly at the right place, or load completely ----


@pytest.fixture(scope="module")
def small_sessions():
    from shop_env.loaders import bundled_sessions

    return bundled_sessions("test")[:6]


@st.composite
def corrupted_lines(draw, lines: list[str]) -> tuple[int, bytes]:
    """(index, new bytes) of one line: a byte-level edit or a JSON-level change of one value."""
    index = draw(st.integers(0, len(lines) - 1))
    raw = lines[index].encode("utf-8")
    edit = draw(st.sampled_from(["truncate", "insert_bytes", "delete", "set_value", "drop_key", "unreadable_value"]))
    if edit == "truncate":  # to at least one byte: an emptied line is a blank line, which JSON Lines skips
        return index, raw[: draw(st.integers(1, len(raw) - 1))]
    if edit == "insert_bytes":  # valid UTF-8 here; invalid UTF-8 has its own test below
        at = draw(st.integers(0, len(raw)))
        return index, raw[:at] + draw(st.text(min_size=1, max_size=8)).encode("utf-8") + raw[at:]
    if edit == "delete":
        at = draw(st.integers(0, len(raw) - 1))
        return index, raw[:at] + raw[at + draw(st.integers(1, 50)) :]
    row = json.loads(lines[index])
    target, key = row, None
    for _ in range(draw(st.integers(0, 3))):  # walk down to a random nested object
        children = [k for k, v in target.items() if isinstance(v, (dict, list)) and v]
        if not children:
            break
        child = target[draw(st.sampled_from(sorted(children)))]
        target = child if isinstance(child, dict) else draw(st.sampled_from(child))
        if not isinstance(target, dict):
            break
    if not isinstance(target, dict) or not target:
        return index, raw[:-1]
    key = draw(st.sampled_from(sorted(target)))
    if edit == "drop_key":
        del target[key]
        return index, json.dumps(row).encode("utf-8")
    if edit == "set_value":
        target[key] = draw(json_values)
        return index, json.dumps(row).encode("utf-8")  # ASCII escapes: drawn values may hold lone surrogates
    # Well-formed JSON at and past what json.loads reads: ~1000 levels of nesting, 4300-digit integers.
    target[key] = UNREADABLE
    depth = draw(st.integers(900, 100_000))
    value = draw(st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth + "0" + "}" * depth, "7" * draw(st.integers(4_000, 6_000))]))
    return index, json.dumps(row).replace(json.dumps(UNREADABLE), value).encode("utf-8")


UNREADABLE = "\x00 placeholder for an unreadable value \x00"


@FUZZ
@given(data=st.data())
def test_corrupted_jsonl_line_is_named_or_the_load_is_complete(small_sessions, tmp_path_factory, data):
    from shop_env.loaders import load_sessions
    from shop_env.session import SessionFormatError

    lines = [json.dumps(session.to_dict(), ensure_ascii=False) for session in small_sessions]
    index, corrupted = data.draw(corrupted_lines(lines))
    path = tmp_path_factory.mktemp("jsonl") / "sessions.jsonl"
    path.write_bytes(b"\n".join(corrupted if i == index else line.encode() for i, line in enumerate(lines)) + b"\n")
    try:
        loaded = load_sessions(path, format="jsonl")
    except SessionFormatError as err:
        event("error names the line")
        assert str(path) in str(err)
        # An inserted newline splits the corrupted line, so the error may name any of its pieces.
        pieces = range(index + 1, index + 2 + corrupted.count(b"\n"))
        assert err.line in pieces, f"error names line {err.line}, the corruption is on lines {list(pieces)}: {err}"
        return
    event("loaded in full")
    assert len(loaded) == len(lines), "a corrupted line vanished from the load (or was split into two sessions)"
    for i, (session, original) in enumerate(zip(loaded, small_sessions, strict=True)):
        if i != index:
            assert session.to_dict() == original.to_dict()


def test_invalid_utf8_names_its_line(small_sessions, tmp_path):
    from shop_env.loaders import load_sessions
    from shop_env.session import SessionFormatError

    lines = [json.dumps(session.to_dict(), ensure_ascii=False).encode("utf-8") for session in small_sessions]
    lines[2] = lines[2][:40] + b"\xff\xfe" + lines[2][40:]
    path = tmp_path / "sessions.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(SessionFormatError) as caught:
        load_sessions(path, format="jsonl")
    assert caught.value.line == 3, str(caught.value)


@pytest.fixture(scope="module")
def opera_table(small_sessions, tmp_path_factory):
    import pyarrow.parquet as pq

    from shop_env.loaders import write_opera_parquet

    path = write_opera_parquet(small_sessions, tmp_path_factory.mktemp("opera") / "actions.parquet")
    return pq.read_table(path)


@FUZZ
@given(data=st.data())
def test_parquet_missing_columns_fail_by_name_or_load_every_action(small_sessions, opera_table, tmp_path_factory, data):
    import pyarrow.parquet as pq

    from shop_env.loaders import OPERA_REQUIRED_COLUMNS, load_sessions
    from shop_env.session import SessionFormatError

    dropped = data.draw(st.sets(st.sampled_from(opera_table.column_names), min_size=1, max_size=6))
    path = tmp_path_factory.mktemp("parquet") / "actions.parquet"
    pq.write_table(opera_table.drop_columns(sorted(dropped)), path)
    missing_required = sorted(set(dropped) & set(OPERA_REQUIRED_COLUMNS))
    try:
        loaded = load_sessions(path, format="opera")
    except SessionFormatError as err:
        event("error names the column")
        assert str(path) in str(err)
        if missing_required:
            assert all(column in str(err) for column in missing_required), err
        else:
            assert err.field in dropped, f"error blames {err.field!r}, the dropped columns are {sorted(dropped)}: {err}"
        return
    event("loaded in full")
    assert not missing_required
    expected = {session.session_id: session.actions for session in small_sessions}
    assert {session.session_id: session.actions for session in loaded} == expected


@FUZZ
@given(data=st.data())
def test_parquet_bad_cell_names_its_row(small_sessions, opera_table, tmp_path_factory, data):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shop_env.loaders import load_sessions
    from shop_env.session import SessionFormatError

    column = data.draw(st.sampled_from(["session_id", "timestamp", "action_type", "semantic_id", "input_text", "simplified_html", "step_index"]))
    row = data.draw(st.integers(0, opera_table.num_rows - 1))
    value = data.draw(st.one_of(st.none(), st.text(max_size=300)))  # parquet strings are UTF-8: no lone surrogates
    cells = opera_table.column(column).to_pylist()
    cells[row] = value
    table = opera_table.set_column(opera_table.column_names.index(column), column, pa.array(cells, pa.string()))
    path = tmp_path_factory.mktemp("cells") / "actions.parquet"
    pq.write_table(table, path)
    try:
        loaded = load_sessions(path, format="opera")
    except SessionFormatError as err:
        event("error names the file and row")
        assert str(path) in str(err) and " row " in str(err), err
        return
    event("loaded in full")
    total_steps = sum(len(session) for session in loaded)
    assert total_steps == opera_table.num_rows, "a row vanished from the load"
