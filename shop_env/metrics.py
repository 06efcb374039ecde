"""The paper's evaluation metrics (docs/contract.md, metrics; paper Tables 2, 3, 5).

- Exact action accuracy: the type matches and, for a click, the name is equal (after stripping
  whitespace); for a type_and_submit, the name is equal and ROUGE-L(text) reaches the threshold;
  a terminate needs only the type. `shop_env.matching.exact_match` is the one definition; the binary
  reward uses it too.
- Action type accuracy, and action type macro F1 over the action types present in the gold set.
- The same per gold action type (Table 3), a confusion matrix and counts.

All rates are fractions in [0, 1]; `as_percentages` turns them into the paper's percentages.
A prediction of None (an unparseable response) is wrong in every metric and appears as "invalid".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shop_env.matching import DEFAULT_ROUGE_THRESHOLD, coerce_gold_action, coerce_predicted_action, exact_match
from shop_env.session import ACTION_TYPES, Action, SessionFormatError

INVALID = "invalid"
"""The confusion-matrix column of predictions that are not an action."""
_COUNT_KEYS = frozenset({"support", "counts", "confusion"})


def evaluate(
    pred_actions: Sequence[Action | Mapping | None],
    gold_actions: Sequence[Action | Mapping],
    *,
    rouge_threshold: float = DEFAULT_ROUGE_THRESHOLD,
) -> dict[str, Any]:
    """Exact and type accuracy, type macro F1, per gold type, confusion matrix and counts.

    Per-type precision counts every prediction of that type (including those on other gold types);
    a type never predicted has precision 0, and so F1 0, as scikit-learn's zero_division=0 does.
    `per_type` lists the gold types present, in the paper's order.

    >>> gold = [Action("click", name="a"), Action("click", name="b"), Action("terminate")]
    >>> result = evaluate([Action("click", name="a"), Action("terminate"), None], gold)
    >>> result["exact_acc"], result["type_acc"], result["type_macro_f1"]
    (0.3333333333333333, 0.3333333333333333, 0.3333333333333333)
    """
    if len(pred_actions) != len(gold_actions):
        raise ValueError(
            f"{len(pred_actions)} predictions for {len(gold_actions)} gold actions; "
            "they must pair up one to one"
        )
    if not gold_actions:
        raise ValueError("nothing to evaluate: no gold actions")
    golds = []
    preds = []
    for index, (pred, gold) in enumerate(zip(pred_actions, gold_actions, strict=True)):
        try:
            golds.append(coerce_gold_action(gold))
            preds.append(coerce_predicted_action(pred))
        except (SessionFormatError, TypeError) as err:
            raise type(err)(f"example {index}: {err}") from None

    columns = (*ACTION_TYPES, INVALID)
    confusion = {gold_type: dict.fromkeys(columns, 0) for gold_type in ACTION_TYPES}
    exact_by_type = dict.fromkeys(ACTION_TYPES, 0)
    for pred, gold in zip(preds, golds, strict=True):
        confusion[gold.type][INVALID if pred is None else pred.type] += 1
        exact_by_type[gold.type] += exact_match(pred, gold, rouge_threshold)

    total = len(golds)
    support = {kind: sum(confusion[kind].values()) for kind in ACTION_TYPES}
    predicted = {column: sum(row[column] for row in confusion.values()) for column in columns}
    type_correct = sum(confusion[kind][kind] for kind in ACTION_TYPES)
    per_type = {}
    for kind in ACTION_TYPES:
        if not support[kind]:
            continue
        hits = confusion[kind][kind]
        precision = hits / predicted[kind] if predicted[kind] else 0.0
        recall = hits / support[kind]
        per_type[kind] = {
            "exact_acc": exact_by_type[kind] / support[kind],
            "type_acc": recall,
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "support": support[kind],
        }
    return {
        "exact_acc": sum(exact_by_type.values()) / total,
        "type_acc": type_correct / total,
        "type_macro_f1": sum(stats["f1"] for stats in per_type.values()) / len(per_type),
        "per_type": per_type,
        "confusion": confusion,
        "counts": {
            "total": total,
            "exact": sum(exact_by_type.values()),
            "type_correct": type_correct,
            "invalid": predicted[INVALID],
            "gold": support,
            "predicted": predicted,
        },
    }


def bootstrap_intervals(
    pred_actions: Sequence[Action | Mapping | None],
    gold_actions: Sequence[Action | Mapping],
    *,
    rouge_threshold: float = DEFAULT_ROUGE_THRESHOLD,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile bootstrap intervals of exact / type accuracy and type macro F1, overall and per gold type.

    Steps are resampled with replacement (`resamples` times, seeded), and each resample is scored as
    `evaluate` scores the whole set; the interval is the central `level` share of those scores. Steps of
    one session are not independent, so read the intervals as a lower bound on the uncertainty.
    Returns {"level", "resamples", "exact_acc": [lo, hi], "type_acc": ..., "type_macro_f1": ...,
    "per_type": {type: {"exact_acc": [lo, hi], "type_acc": [lo, hi]}}}.
    """
    import numpy as np

    if not 0 < level < 1 or resamples < 1:
        raise ValueError(f"need 0 < level < 1 and resamples >= 1, got level={level}, resamples={resamples}")
    if len(pred_actions) != len(gold_actions) or not gold_actions:
        raise ValueError(f"{len(pred_actions)} predictions for {len(gold_actions)} gold actions; need the same, at least one")
    golds = [coerce_gold_action(gold) for gold in gold_actions]
    preds = [coerce_predicted_action(pred) for pred in pred_actions]
    columns = (*ACTION_TYPES, INVALID)
    gold_type = np.array([ACTION_TYPES.index(gold.type) for gold in golds])
    pred_type = np.array([columns.index(INVALID if pred is None else pred.type) for pred in preds])
    exact = np.array([exact_match(pred, gold, rouge_threshold) for pred, gold in zip(preds, golds, strict=True)], float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(golds), size=(resamples, len(golds)))  # (R, n) step indices
    g, p, e = gold_type[picks], pred_type[picks], exact[picks]
    hit = (g == p).astype(float)
    kinds = range(len(ACTION_TYPES))
    support = np.stack([(g == k).sum(1) for k in kinds], 1)  # (R, K)
    predicted = np.stack([(p == k).sum(1) for k in kinds], 1)
    hits = np.stack([((g == k) & (p == k)).sum(1) for k in kinds], 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        present = support > 0  # macro F1 over the gold types present in that resample, as `evaluate` does
        macro_f1 = (f1 * present).sum(1) / present.sum(1)
        exact_by_type = np.stack([np.where(support[:, k] > 0, (e * (g == k)).sum(1) / support[:, k], np.nan) for k in kinds], 1)
    tails = [100 * (1 - level) / 2, 100 * (1 + level) / 2]

    def interval(values) -> list[float]:
        values = values[~np.isnan(values)]
        return [float(v) for v in np.percentile(values, tails)] if values.size else [float("nan")] * 2

    result: dict[str, Any] = {
        "level": level, "resamples": resamples,
        "exact_acc": interval(e.mean(1)), "type_acc": interval(hit.mean(1)), "type_macro_f1": interval(macro_f1),
        "per_type": {},
    }
    for k, kind in enumerate(ACTION_TYPES):
        if (gold_type == k).any():
            recall_k = np.where(support[:, k] > 0, recall[:, k], np.nan)
            result["per_type"][kind] = {"exact_acc": interval(exact_by_type[:, k]), "type_acc": interval(recall_k)}
    return result


def percent(fraction: float, digits: int = 2) -> str:
    """A fraction as the paper prints it.

    >>> percent(0.2772)
    '27.72%'
    """
    return f"{100 * fraction:.{digits}f}%"


def as_percentages(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The same nested dict with every rate x 100 (counts, support and the confusion matrix as is).

    >>> as_percentages({"exact_acc": 0.25, "per_type": {"click": {"f1": 0.5, "support": 4}}})
    {'exact_acc': 25.0, 'per_type': {'click': {'f1': 50.0, 'support': 4}}}
    """
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if key in _COUNT_KEYS:
            out[key] = value
        elif isinstance(value, Mapping):
            out[key] = as_percentages(value)
        elif isinstance(value, float):
            out[key] = 100 * value
        else:
            out[key] = value
    return out
