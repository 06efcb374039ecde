"""The hybrid reward against hand-computed numbers: every row of the paper's Table 1, the ROUGE-L
threshold edge, binary mode, each ablation, format failures and the bounds.

ROUGE-L by hand (rouge-score lowercases and splits on everything but ASCII letters and digits):
- click gold `search_results.trail_runner.view_product` = search results trail runner view product (6)
  vs `search_results.road_runner.view_product` (6): LCS 5, P = R = 5/6, F = 5/6 >= 0.75
  vs `search_results.road_shoe.view_product` (6): LCS 4, F = 4/6 < 0.75 -> 0
- type_and_submit gold name `header.search_box.search_input` = header search box search input (5)
  vs `header.search_box.search_button` (5): LCS 4, F = 4/5 = 0.8
- gold text `red running shoes` (3) vs `red trail running shoes` (4): LCS 3, P = 3/4, R = 1,
  F = 2 (3/4)(1) / (7/4) = 6/7
- threshold edge: `a b c e` vs `a b c d`: LCS 3, F = 3/4 exactly; `a b c` vs `a b c d e`: 2*3/8 = 3/4
  (rouge-score's floats give 0.7499999999999999); `a b c d e f g x y` vs `a b c d e f g h i j`:
  LCS 7, F = 14/19 ~ 0.7368, just below.
"""

from __future__ import annotations

import doctest
import json
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

import shop_env.dars
import shop_env.format_reward
import shop_env.metrics
import shop_env.response_format
import shop_env.rewards
from shop_env.matching import MAX_ROUGE_TOKENS, lcs_length, rouge_l, rouge_tokens, thresholded_rouge_l
from shop_env.response_format import EXAMPLE_RESPONSES, MAX_RESPONSE_CHARS, format_response
from shop_env.rewards import (
    ABLATIONS,
    RewardBreakdown,
    RewardConfig,
    max_reward,
    score_action,
    score_response,
)
from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT, Action, SessionFormatError

TOL = 1e-9
ROUGE_SCORE = rouge_scorer.RougeScorer(["rougeL"])
"""The paper's metric as the rouge-score package computes it: the reference for shop_env.matching."""
CLICK_GOLD = Action(CLICK, name="search_results.trail_runner.view_product")
SEARCH_GOLD = Action(TYPE_AND_SUBMIT, name="header.search_box.search_input", text="red running shoes")
TERMINATE_GOLD = Action(TERMINATE)


def respond(action: Action | dict, rationale: str = "Because.") -> str:
    if isinstance(action, Action):
        return format_response(rationale, action)
    return json.dumps({"rationale": rationale, "action": action})


def click(name: str) -> Action:
    return Action(CLICK, name=name)


def search(name: str, text: str) -> Action:
    return Action(TYPE_AND_SUBMIT, name=name, text=text)


# ---- Table 1, default config: format 0.5, type 0.3, DARS 1000, threshold 0.75 ----

TABLE_1 = [
    # (case, predicted, gold, format, type, attribute, value)
    ("terminate right", TERMINATE_GOLD, TERMINATE_GOLD, 0.5, 0.3, 0.0, 0.0),
    ("terminate, predicted click", click("a.b"), TERMINATE_GOLD, 0.5, 0.0, 0.0, 0.0),
    ("click exact", CLICK_GOLD, CLICK_GOLD, 0.5, 0.3, 0.2, 1000.0),
    ("click similar name", click("search_results.road_runner.view_product"), CLICK_GOLD,
     0.5, 0.3, 0.2, 1000 * 5 / 6),
    ("click name below threshold", click("search_results.road_shoe.view_product"), CLICK_GOLD,
     0.5, 0.3, 0.2, 0.0),
    ("click empty name", click(""), CLICK_GOLD, 0.5, 0.3, 0.0, 0.0),
    ("click blank name", click("  \n"), CLICK_GOLD, 0.5, 0.3, 0.0, 0.0),
    ("click, predicted terminate", TERMINATE_GOLD, CLICK_GOLD, 0.5, 0.0, 0.0, 0.0),
    ("click, predicted search with its name", search(CLICK_GOLD.name, "x"), CLICK_GOLD,
     0.5, 0.0, 0.0, 0.0),
    ("search exact", SEARCH_GOLD, SEARCH_GOLD, 0.5, 0.3, 0.2, 0.1 + 1000.0),
    ("search similar text", search(SEARCH_GOLD.name, "red trail running shoes"), SEARCH_GOLD,
     0.5, 0.3, 0.2, 0.1 + 1000 * 6 / 7),
    ("search similar name", search("header.search_box.search_button", SEARCH_GOLD.text), SEARCH_GOLD,
     0.5, 0.3, 0.2, 0.1 * 0.8 + 1000.0),
    ("search empty name, wrong text", search("", "x"), SEARCH_GOLD, 0.5, 0.3, 0.1, 0.0),
    ("search right name, empty text", search(SEARCH_GOLD.name, ""), SEARCH_GOLD, 0.5, 0.3, 0.1, 0.1),
    ("search both wrong", search("footer.link", "blue hat"), SEARCH_GOLD, 0.5, 0.3, 0.2, 0.0),
    ("search, predicted click", click(SEARCH_GOLD.name), SEARCH_GOLD, 0.5, 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(
    "pred, gold, fmt, kind, attribute, value", [row[1:] for row in TABLE_1], ids=[row[0] for row in TABLE_1]
)
def test_table_1_rows(pred, gold, fmt, kind, attribute, value):
    result = score_response(respond(pred), gold)
    assert result.error is None
    assert result.format == pytest.approx(fmt, abs=TOL)
    assert result.type == pytest.approx(kind, abs=TOL)
    assert result.attribute == pytest.approx(attribute, abs=TOL)
    assert result.value == pytest.approx(value, abs=TOL)
    assert result.action == pytest.approx(kind + attribute + value, abs=TOL)
    assert result.total == pytest.approx(fmt + kind + attribute + value, abs=TOL)
    # score_action gives the same numbers for the action handed over directly.
    assert score_action(pred, gold).total == pytest.approx(result.total, abs=TOL)


def test_hand_computed_rouge_values():
    assert rouge_l("search_results.road_runner.view_product", CLICK_GOLD.name) == pytest.approx(5 / 6, abs=TOL)
    assert rouge_l("red trail running shoes", "red running shoes") == pytest.approx(6 / 7, abs=TOL)
    assert rouge_l("header.search_box.search_button", SEARCH_GOLD.name) == pytest.approx(0.8, abs=TOL)
    assert rouge_l("Red Running-Shoes", "red running shoes") == 1.0  # lowercased, '-' splits


def test_rouge_tokenization_of_dotted_names_is_documented_behaviour():
    """Underscores and dots split tokens; non-ASCII letters are dropped (rouge-score's tokenizer)."""
    tokenizer = ROUGE_SCORE._tokenizer
    assert tokenizer.tokenize("search_results.foo_bar.view_product") == [
        "search", "results", "foo", "bar", "view", "product"
    ]
    assert tokenizer.tokenize("Café 日本語") == ["caf"]
    assert rouge_l("日本語", "日本語") == 1.0  # identical: short-circuit, rouge-score alone gives 0
    assert rouge_l("日本語", "中文") == 0.0


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.text(st.characters(exclude_categories=()), max_size=80))
def test_tokens_match_rouge_score_tokenizer(text):
    assert rouge_tokens(text) == ROUGE_SCORE._tokenizer.tokenize(text)


small_vocabulary_text = st.lists(st.sampled_from(["a", "b", "c", "Shoe", "run-ning", "x_1", "日本"]), max_size=60).map(" ".join)


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(small_vocabulary_text, small_vocabulary_text | st.text(st.characters(exclude_categories=()), max_size=80))
def test_rouge_l_is_rouge_scores_f_measure(prediction, reference):
    """The bit-parallel LCS gives rouge-score's number exactly (few distinct tokens: long LCSs)."""
    expected = ROUGE_SCORE.score(reference, prediction)["rougeL"].fmeasure
    got = rouge_l(prediction, reference)
    assert got == expected or (prediction.strip() == reference.strip() and got == 1.0)
    assert thresholded_rouge_l(prediction, reference, 0.0) == got or not rouge_tokens(prediction)


def test_lcs_length_matches_the_dynamic_programme_table():
    from rouge_score.rouge_scorer import _lcs_table

    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 70))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 200))]
        assert lcs_length(a, b) == _lcs_table(a, b)[-1][-1] == lcs_length(b, a)


def test_values_past_the_token_cap_are_compared_by_their_first_tokens():
    head = " ".join(f"w{i}" for i in range(MAX_ROUGE_TOKENS))
    assert rouge_tokens(head + " tail") == head.split()
    assert rouge_l(head + " one more", head + " other words") == 1.0


# ---- the threshold edge ----

@pytest.mark.parametrize(
    "pred_text, gold_text, similarity",
    [("a b c e", "a b c d", 0.75), ("a b c", "a b c d e", 0.75)],
    ids=["exactly-0.75", "0.75-computed-as-0.7499999999999999"],
)
def test_similarity_at_threshold_counts(pred_text, gold_text, similarity):
    gold = search("q.input", gold_text)
    result = score_response(respond(search("q.input", pred_text)), gold)
    assert result.value == pytest.approx(0.1 + 1000 * similarity, abs=1e-9)


def test_similarity_just_below_threshold_counts_zero():
    gold = search("q.input", "a b c d e f g h i j")
    assert rouge_l("a b c d e f g x y", gold.text) == pytest.approx(14 / 19, abs=TOL)
    result = score_response(respond(search("q.input", "a b c d e f g x y")), gold)
    assert result.value == pytest.approx(0.1, abs=TOL)  # only the exact name's 0.1 x 1
    assert result.total == pytest.approx(0.5 + 0.3 + 0.2 + 0.1, abs=TOL)


def test_threshold_is_configurable():
    gold = search("q.input", "a b c d e f g h i j")
    lenient = RewardConfig(rouge_threshold=0.7)
    result = score_response(respond(search("q.input", "a b c d e f g x y")), gold, lenient)
    assert result.value == pytest.approx(0.1 + 1000 * 14 / 19, abs=TOL)


def test_length_bound_skips_only_hopeless_pairs():
    """2 min(n, m) / (n + m) bounds F; the shortcut must agree with the full computation."""
    gold = "red running shoes"
    long_prediction = "red running shoes " + "x " * 10
    assert thresholded_rouge_l(long_prediction, gold, 0.75) == 0.0
    assert thresholded_rouge_l(long_prediction, gold, 0.0) == pytest.approx(rouge_l(long_prediction, gold))
    assert thresholded_rouge_l("", gold, 0.0) == 0.0


# ---- binary mode and ablations ----

BINARY = RewardConfig.ablation("binary")


@pytest.mark.parametrize(
    "pred, gold, action_reward",
    [
        (CLICK_GOLD, CLICK_GOLD, 1.0),
        (click(" search_results.trail_runner.view_product\t"), CLICK_GOLD, 1.0),  # stripped
        (click("search_results.road_runner.view_product"), CLICK_GOLD, 0.0),  # 5/6 similar: not exact
        (search(SEARCH_GOLD.name, "red trail running shoes"), SEARCH_GOLD, 1.0),  # text 6/7 >= 0.75
        (search(SEARCH_GOLD.name, "blue running shoes"), SEARCH_GOLD, 0.0),  # text 2/3 < 0.75
        (search("header.search_box.search_button", SEARCH_GOLD.text), SEARCH_GOLD, 0.0),  # name differs
        (TERMINATE_GOLD, TERMINATE_GOLD, 1.0),
        (TERMINATE_GOLD, CLICK_GOLD, 0.0),
    ],
)
def test_binary_action_reward(pred, gold, action_reward):
    result = score_response(respond(pred), gold, BINARY)
    assert (result.format, result.action, result.total) == (0.5, action_reward, 0.5 + action_reward)
    assert (result.type, result.attribute, result.value) == (0.0, 0.0, 0.0)
    assert max_reward(gold, BINARY) == 1.5


def test_binary_mode_uses_the_metrics_exact_match(monkeypatch):
    """One definition of exact match: patching it changes the binary reward."""
    monkeypatch.setattr(shop_env.rewards, "exact_match", lambda pred, gold, threshold: True)
    assert score_response(respond(TERMINATE_GOLD), CLICK_GOLD, BINARY).action == 1.0
    assert shop_env.rewards.exact_match is not shop_env.metrics.exact_match


def test_no_format_ablation_pays_no_format_but_still_gates():
    config = RewardConfig.ablation("no_format")
    assert config.use_format is False
    exact = score_response(respond(CLICK_GOLD), CLICK_GOLD, config)
    assert (exact.format, exact.total) == (0.0, pytest.approx(0.3 + 0.2 + 1000.0, abs=TOL))
    broken = score_response('{"rationale": "x", "action": {"type": "jump"}}', CLICK_GOLD, config)
    assert broken.total == 0.0 and "jump" in broken.error
    assert max_reward(CLICK_GOLD, config) == pytest.approx(1000.5, abs=TOL)


def test_no_rationale_ablation_keeps_s_but_pays_nothing():
    config = RewardConfig.ablation("no_rationale")
    result = score_response(respond(TERMINATE_GOLD), TERMINATE_GOLD, config, self_certainty=26.0)
    assert (result.self_certainty, result.rationale, result.total) == (26.0, 0.0, pytest.approx(0.8))


def test_no_dars_ablation():
    config = RewardConfig.ablation("no_dars")
    assert config.dars_factor == 1.0
    assert score_response(respond(CLICK_GOLD), CLICK_GOLD, config).total == pytest.approx(2.0, abs=TOL)
    similar = score_response(respond(click("search_results.road_runner.view_product")), CLICK_GOLD, config)
    assert similar.value == pytest.approx(5 / 6, abs=TOL)
    assert score_response(respond(SEARCH_GOLD), SEARCH_GOLD, config).total == pytest.approx(2.1, abs=TOL)


def test_every_ablation_changes_exactly_its_field():
    default = RewardConfig()
    for name, overrides in ABLATIONS.items():
        config = RewardConfig.ablation(name)
        changed = {key for key in vars(default) if getattr(config, key) != getattr(default, key)}
        assert changed == set(overrides), name


def test_unknown_ablation_names_the_choices():
    with pytest.raises(ValueError, match="no_format, no_rationale, no_dars, binary"):
        RewardConfig.ablation("no_kl")
    with pytest.raises(ValueError, match="training switch"):
        RewardConfig.ablation("no_sft")


# ---- the rationale term ----

def test_rationale_reward_is_alpha_times_self_certainty():
    """The paper's Figure 1: s ~ 26 nats x alpha 0.005 = +0.13."""
    result = score_response(respond(CLICK_GOLD), CLICK_GOLD, self_certainty=26.0)
    assert result.rationale == pytest.approx(0.13, abs=TOL)
    assert result.total == pytest.approx(1001.13, abs=TOL)
    assert result.as_dict()["reward/self_certainty"] == 26.0


def test_format_failure_drops_the_rationale_reward_too():
    result = score_response('{"rationale": "x"}', CLICK_GOLD, self_certainty=26.0)
    assert (result.total, result.rationale) == (0.0, 0.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, "12", b"1", True, object(), [1.0, 2.0]])
def test_unusable_self_certainty_pays_zero_and_says_why(bad):
    result = score_response(respond(TERMINATE_GOLD), TERMINATE_GOLD, self_certainty=bad)
    assert result.rationale == 0.0 and result.self_certainty is None
    assert result.total == pytest.approx(0.8) and "rationale reward set to 0" in result.error


def test_tensor_self_certainty_is_read_as_a_float():
    torch = pytest.importorskip("torch")
    result = score_response(respond(TERMINATE_GOLD), TERMINATE_GOLD, self_certainty=torch.tensor(10.0))
    assert result.self_certainty == 10.0 and result.rationale == pytest.approx(0.05)
    batch = score_response(respond(TERMINATE_GOLD), TERMINATE_GOLD, self_certainty=torch.ones(2))
    assert batch.rationale == 0.0 and "not a number" in batch.error


# ---- format failures ----

FORMAT_FAILURES = {
    "no action": '{"rationale": "I like it."}',
    "action not an object": '{"rationale": "I like it.", "action": "click"}',
    "action without type": '{"rationale": "I like it.", "action": {"name": "a.b"}}',
    "unknown type": '{"rationale": "I like it.", "action": {"type": "scroll"}}',
    "type not a string": '{"rationale": "I like it.", "action": {"type": ["click"]}}',
    "no rationale": '{"action": {"type": "terminate"}}',
    "rationale not a string": '{"rationale": 3, "action": {"type": "terminate"}}',
    "two objects": respond(TERMINATE_GOLD) + respond(TERMINATE_GOLD),
    "prose around": "Sure! " + respond(TERMINATE_GOLD),
    "a list": "[" + respond(TERMINATE_GOLD) + "]",
    "truncated": respond(CLICK_GOLD)[:-3],
    "empty": "",
    "over the length limit": " " * (MAX_RESPONSE_CHARS + 1),
}


@pytest.mark.parametrize("text", FORMAT_FAILURES.values(), ids=FORMAT_FAILURES.keys())
@pytest.mark.parametrize("config", [RewardConfig(), BINARY, RewardConfig.ablation("no_format")],
                         ids=["default", "binary", "no_format"])
def test_format_failure_scores_zero_in_total(text, config):
    result = score_response(text, TERMINATE_GOLD, config)
    assert result.total == 0.0 and result.format == 0.0 and result.action == 0.0
    assert isinstance(result.error, str) and result.error


def test_score_action_inputs():
    assert score_action({"type": "click", "name": CLICK_GOLD.name}, CLICK_GOLD).total == pytest.approx(1001.0)
    assert score_action(None, CLICK_GOLD).error == "no action"
    assert "got str" in score_action(respond(CLICK_GOLD), CLICK_GOLD).error
    assert score_action({"type": "hover"}, CLICK_GOLD).total == 0.0
    over = score_action({"type": "click", "name": "a " * MAX_RESPONSE_CHARS}, CLICK_GOLD)
    assert over.total == 0.0 and "limit" in over.error


def test_malformed_gold_action_raises_naming_the_field():
    with pytest.raises(SessionFormatError, match="gold action.*action.type"):
        score_response(respond(TERMINATE_GOLD), {"type": "scroll"})
    with pytest.raises(SessionFormatError, match="action.name"):
        score_action(TERMINATE_GOLD, {"type": "click"})


# ---- max_reward, max_total, as_dict, config validation ----

def test_max_reward_per_gold_type():
    assert max_reward(TERMINATE_GOLD) == pytest.approx(0.8, abs=TOL)
    assert max_reward(CLICK_GOLD) == pytest.approx(1001.0, abs=TOL)
    assert max_reward(SEARCH_GOLD) == pytest.approx(1001.1, abs=TOL)
    assert RewardConfig().max_total == pytest.approx(1001.1, abs=TOL)
    assert RewardConfig.ablation("no_dars").max_total == pytest.approx(2.1, abs=TOL)


def test_max_reward_with_a_blank_gold_text_is_what_the_best_prediction_earns():
    """A blank human text: copying it earns DARS x 1 but no text attribute reward."""
    gold = search("q.input", "")
    assert score_response(respond(gold), gold).total == pytest.approx(max_reward(gold), abs=TOL)
    assert max_reward(gold) == pytest.approx(0.5 + 0.3 + 0.1 + 0.1 + 1000.0, abs=TOL)


def test_as_dict_has_namespaced_float_keys():
    keys = set(score_response(respond(CLICK_GOLD), CLICK_GOLD).as_dict())
    assert {"reward/total", "reward/format", "reward/type", "reward/attribute", "reward/dars_value",
            "reward/self_certainty", "reward/rationale"} <= keys
    assert all(isinstance(v, float) for v in RewardBreakdown().as_dict().values())


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"dars_factor": 0.0}, "dars_factor"),
        ({"dars_factor": -5.0}, "dars_factor"),
        ({"rouge_threshold": 1.5}, "rouge_threshold"),
        ({"alpha": math.nan}, "alpha"),
        ({"format_weight": "0.5"}, "format_weight"),
        ({"type_weight": -0.3}, "type_weight"),
        ({"action_reward": "exact"}, "hierarchical, binary"),
        ({"use_format": "yes"}, "use_format"),
    ],
)
def test_config_validation_names_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        RewardConfig(**overrides)


# ---- properties: whatever the text, the reward is finite and in [0, max_reward] ----

PROPERTY = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
any_text = st.text(st.characters(exclude_categories=()), max_size=200)  # lone surrogates included
configs = st.sampled_from([RewardConfig(), *(RewardConfig.ablation(name) for name in ABLATIONS)])
golds = st.sampled_from([CLICK_GOLD, SEARCH_GOLD, TERMINATE_GOLD, search("q.input", "")])


@st.composite
def mutated_responses(draw) -> str:
    text = json.dumps(draw(st.sampled_from(list(EXAMPLE_RESPONSES.values()))), ensure_ascii=False)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        text = draw(st.sampled_from([
            text[:at] + text[at + 1:],
            text[:at] + draw(any_text) + text[at:],
            text[:at],
            text.replace("click", draw(any_text), 1),
        ]))
    return text


deep_nesting = st.integers(1, 50_000).map(lambda depth: '{"rationale": "x", "action": ' + "[" * depth + "}")
huge = st.sampled_from([
    "x" * (MAX_RESPONSE_CHARS + 1),
    respond({"type": "click", "name": "search " * 14_000}),  # 98k characters: parsed and scored
])


def check_bounds(result: RewardBreakdown, gold: Action, config: RewardConfig) -> None:
    assert math.isfinite(result.total)
    assert 0.0 <= result.total <= max_reward(gold, config) * (1 + 1e-12)
    if result.total == 0.0 and result.format == 0.0 and config.use_format:
        assert result.error


@PROPERTY
@given(st.one_of(any_text, mutated_responses(), deep_nesting, huge), golds, configs)
def test_any_text_scores_within_bounds(text, gold, config):
    check_bounds(score_response(text, gold, config), gold, config)


@PROPERTY
@given(st.from_type(object) | any_text | st.dictionaries(any_text, any_text | st.integers()), golds, configs)
def test_any_object_as_action_scores_within_bounds(predicted, gold, config):
    check_bounds(score_action(predicted, gold, config), gold, config)


def test_doctests_of_the_reward_modules():
    for module in (shop_env.dars, shop_env.format_reward, shop_env.response_format, shop_env.rewards,
                   shop_env.metrics):
        failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert tried > 0 and failures == 0, module.__name__


def test_reward_hacking_experiment_runs_on_recorded_sessions(tmp_path):
    """experiments/reward_hacking.py end to end: gold earns the maximum, DARS widens its margin."""
    import importlib.util
    from pathlib import Path

    from shop_env.session import read_jsonl

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("reward_hacking", root / "experiments" / "reward_hacking.py")
    experiment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(experiment)
    fixture = root / "tests" / "fixtures" / "real_format_sessions.jsonl"
    result = experiment.main(["--sessions", str(fixture), "--out", str(tmp_path / "out.json")])
    assert json.loads((tmp_path / "out.json").read_text()) == result

    session = next(s for s in read_jsonl(fixture) if s.session_id == result["session_id"])
    for name, config in experiment.CONFIGS.items():
        rewards = result["mean_total_reward_per_step"][name]
        best = sum(max_reward(step.action, config) for step in session.steps) / len(session)
        assert rewards["gold"] == pytest.approx(best)
        assert max(rewards.values()) == rewards["gold"]
    default, no_dars = (result["mean_total_reward_per_step"][name] for name in experiment.CONFIGS)
    assert default["gold"] / default["always-terminate"] > 100 * no_dars["gold"] / no_dars["always-terminate"]
