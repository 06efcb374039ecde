"""The evaluation metrics on a small hand-made set, with every number worked out by hand."""

from __future__ import annotations

import pytest

from shop_env.matching import exact_match
from shop_env.metrics import INVALID, as_percentages, evaluate, percent
from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT, Action, SessionFormatError


def click(name: str) -> Action:
    return Action(CLICK, name=name)


def search(name: str, text: str) -> Action:
    return Action(TYPE_AND_SUBMIT, name=name, text=text)


STOP = Action(TERMINATE)
GOLD = [
    click("a.view"),
    click("b.view"),
    search("q.input", "red running shoes"),
    search("q.input", "blue hat"),
    STOP,
    STOP,
]
PRED = [
    click("a.view"),  # exact
    click("c.view"),  # right type, wrong name
    search("q.input", "red trail running shoes"),  # same name, ROUGE-L 6/7 >= 0.75: exact
    search("other.input", "blue hat"),  # right type, name differs: not exact
    None,  # unparseable
    click("a.view"),  # wrong type
]


@pytest.fixture(scope="module")
def result():
    return evaluate(PRED, GOLD)


def test_headline_numbers(result):
    # exact: 2 of 6; type: 2 clicks + 2 searches of 6.
    assert result["exact_acc"] == pytest.approx(2 / 6)
    assert result["type_acc"] == pytest.approx(4 / 6)
    # click P = 2/3 (3 predicted), R = 1 -> F1 0.8; search P = R = 1; terminate never predicted -> 0.
    assert result["type_macro_f1"] == pytest.approx((0.8 + 1.0 + 0.0) / 3)


def test_per_type(result):
    per_type = result["per_type"]
    assert per_type[CLICK] == pytest.approx(
        {"exact_acc": 0.5, "type_acc": 1.0, "precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    assert per_type[TYPE_AND_SUBMIT] == pytest.approx(
        {"exact_acc": 0.5, "type_acc": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    )
    assert per_type[TERMINATE] == {
        "exact_acc": 0.0, "type_acc": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2
    }
    assert list(per_type) == [CLICK, TYPE_AND_SUBMIT, TERMINATE]


def test_confusion_and_counts(result):
    assert result["confusion"] == {
        CLICK: {CLICK: 2, TYPE_AND_SUBMIT: 0, TERMINATE: 0, INVALID: 0},
        TYPE_AND_SUBMIT: {CLICK: 0, TYPE_AND_SUBMIT: 2, TERMINATE: 0, INVALID: 0},
        TERMINATE: {CLICK: 1, TYPE_AND_SUBMIT: 0, TERMINATE: 0, INVALID: 1},
    }
    assert result["counts"] == {
        "total": 6,
        "exact": 2,
        "type_correct": 4,
        "invalid": 1,
        "gold": {CLICK: 2, TYPE_AND_SUBMIT: 2, TERMINATE: 2},
        "predicted": {CLICK: 3, TYPE_AND_SUBMIT: 2, TERMINATE: 0, INVALID: 1},
    }


def test_macro_f1_covers_only_gold_types_present():
    result = evaluate([click("a"), STOP, STOP], [click("a"), click("b"), STOP])
    # click P = 1, R = 1/2 -> 2/3; terminate P = 1/2, R = 1 -> 2/3; no type_and_submit in gold.
    assert set(result["per_type"]) == {CLICK, TERMINATE}
    assert result["type_macro_f1"] == pytest.approx(2 / 3)


def test_dict_predictions_and_golds_are_read():
    result = evaluate([{"type": "click", "name": "a"}, {"type": "hover"}], [{"type": "click", "name": "a"}, STOP])
    assert result["exact_acc"] == 0.5 and result["counts"]["invalid"] == 1


def test_all_invalid_predictions_score_zero_without_raising():
    result = evaluate([None, None], [click("a"), STOP])
    assert (result["exact_acc"], result["type_acc"], result["type_macro_f1"]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "pred, gold, expected",
    [
        (click(" a.view\n"), click("a.view"), True),  # whitespace stripped
        (click("A.view"), click("a.view"), False),  # names are case-sensitive
        (search("q", "Red Running Shoes"), search("q", "red running shoes"), True),  # ROUGE-L lowercases
        (search("q", "a b c"), search("q", "a b c d e"), True),  # exactly 0.75
        (search("q", "a b c d e f g x y"), search("q", "a b c d e f g h i j"), False),  # 14/19
        (STOP, STOP, True),
        (None, STOP, False),
        (STOP, click("a"), False),
    ],
)
def test_exact_match(pred, gold, expected):
    assert exact_match(pred, gold) is expected


def test_exact_match_threshold_zero_accepts_any_text():
    assert exact_match(search("q", "x"), search("q", "yyy"), rouge_threshold=0.0)


def test_bad_calls_raise_with_the_example_index():
    with pytest.raises(ValueError, match="2 predictions for 1 gold"):
        evaluate([STOP, STOP], [STOP])
    with pytest.raises(ValueError, match="no gold actions"):
        evaluate([], [])
    with pytest.raises(TypeError, match="example 1: .*parse_response"):
        evaluate([STOP, '{"rationale": ""}'], [STOP, STOP])
    with pytest.raises(SessionFormatError, match="example 0: gold action"):
        evaluate([STOP], [{"type": "scroll"}])


def test_percentages(result):
    assert percent(0.2772) == "27.72%"
    shown = as_percentages(result)
    assert shown["exact_acc"] == pytest.approx(100 * 2 / 6)
    assert shown["per_type"][CLICK]["f1"] == pytest.approx(80.0)
    assert shown["per_type"][CLICK]["support"] == 2
    assert shown["counts"] == result["counts"] and shown["confusion"] == result["confusion"]


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_steps():
    from shop_env.metrics import bootstrap_intervals

    gold = [Action("click", name="a"), Action("terminate"), Action("type_and_submit", name="s", text="red shoes")] * 10
    pred = [Action("click", name="a"), Action("click", name="b"), None] * 10
    point = evaluate(pred, gold)
    small = bootstrap_intervals(pred, gold, seed=1)
    assert small == bootstrap_intervals(pred, gold, seed=1)  # seeded
    for key in ("exact_acc", "type_acc", "type_macro_f1"):
        low, high = small[key]
        assert low <= point[key] <= high and low < high
    assert small["per_type"]["click"]["exact_acc"] == [1.0, 1.0]  # every click right in every resample
    assert small["per_type"]["terminate"]["type_acc"] == [0.0, 0.0]
    large = bootstrap_intervals(pred * 10, gold * 10, seed=1)
    assert large["exact_acc"][1] - large["exact_acc"][0] < small["exact_acc"][1] - small["exact_acc"][0]
    with pytest.raises(ValueError, match="level"):
        bootstrap_intervals(pred, gold, level=95)
