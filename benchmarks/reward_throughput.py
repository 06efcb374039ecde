"""`score_response` throughput against calling rouge-score directly on the same (prediction, gold) pairs.

The pairs mimic a GRPO group late in SFT: for every gold action of the bundled test sessions, one
exact copy, one near miss (one token of the name or text changed), one other element of the same page
kind and one wrong type. `score_response` does everything the trainer needs (parse the JSON, check
the format, type, attribute and DARS value terms); the baseline only runs `RougeScorer.score` on the
name (and text) pairs, the metric work a hand-written reward would do after parsing for free.

Two regimes, since dars.py memoises ROUGE-L of short pairs:
- unique: every round scores pairs never seen before (the first epoch);
- repeated: the same pairs every round (a GRPO group repeats the same few names).
Pinned to one core.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence

from rouge_score import rouge_scorer

from benchmarks import interleaved_rates, median_ratio, pinned_to_one_core
from shop_env.loaders import bundled_sessions
from shop_env.response_format import format_response
from shop_env.rewards import RewardConfig, score_response
from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT, Action

Pair = tuple[str, Action, Action]
"""(response text, predicted action, gold action)."""


def _near_miss(value: str, rng: random.Random, salt: str) -> str:
    """Change one token of a dotted name or a phrase, so ROUGE-L has real work to do."""
    separator = "." if "." in value else " "
    tokens = value.split(separator)
    tokens[rng.randrange(len(tokens))] = f"alt{salt}"
    return separator.join(tokens)


def make_pairs(golds: Sequence[Action], seed: int) -> list[Pair]:
    """Four predictions per gold action: a copy, a near miss, another element, a wrong type."""
    rng = random.Random(seed)
    clicks = [g.name for g in golds if g.type == CLICK]
    pairs: list[Pair] = []
    for gold in golds:
        salt = f"{seed}x{rng.randrange(10**9)}"
        predictions = [gold, Action(TERMINATE) if gold.type != TERMINATE else Action(CLICK, name=rng.choice(clicks))]
        if gold.type == CLICK:
            predictions += [
                Action(CLICK, name=_near_miss(gold.name, rng, salt)),
                Action(CLICK, name=rng.choice(clicks) + f".{salt}"),
            ]
        elif gold.type == TYPE_AND_SUBMIT:
            predictions += [
                Action(TYPE_AND_SUBMIT, name=gold.name, text=_near_miss(gold.text or "x", rng, salt)),
                Action(TYPE_AND_SUBMIT, name=_near_miss(gold.name, rng, salt), text=f"{gold.text} {salt}"),
            ]
        pairs += [(format_response("Because it fits what I want.", p), p, gold) for p in predictions]
    return pairs


def score_workload(batches: list[list[Pair]], config: RewardConfig) -> Callable[[], int]:
    """score_response over the next batch at each call (cycling), so batches can be made unique."""
    calls = itertools.count()

    def score() -> int:
        batch = batches[next(calls) % len(batches)]
        for text, _, gold in batch:
            score_response(text, gold, config)
        return len(batch)

    return score


def rouge_workload(batches: list[list[Pair]]) -> Callable[[], int]:
    """RougeScorer.score on the name (and text) of each pair whose types agree: nothing else."""
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    calls = itertools.count()

    def score() -> int:
        batch = batches[next(calls) % len(batches)]
        for _, pred, gold in batch:
            if pred.type != gold.type or gold.type == TERMINATE:
                continue
            scorer.score(gold.name, pred.name)
            if gold.type == TYPE_AND_SUBMIT:
                scorer.score(gold.text, pred.text)
        return len(batch)

    return score


def run(quick: bool = False) -> dict:
    golds = [step.action for session in bundled_sessions("test") for step in session.steps]
    rounds = 10 if quick else 30
    config = RewardConfig()
    # One untimed warm-up call plus `rounds` timed calls per workload: rounds + 1 distinct batches.
    unique = [make_pairs(golds, seed) for seed in range(rounds + 1)]
    repeated = [unique[0]]
    with pinned_to_one_core() as core:
        rates = interleaved_rates(
            {
                "score_unique": score_workload(unique, config),
                "rouge_unique": rouge_workload(unique),
                "score_repeated": score_workload(repeated, config),
                "rouge_repeated": rouge_workload(repeated),
            },
            rounds=rounds,
        )
    best = {name: rate.best for name, rate in rates.items()}
    kinds = {kind: sum(1 for _, _, gold in unique[0] if gold.type == kind) for kind in (CLICK, TYPE_AND_SUBMIT, TERMINATE)}
    return {
        "benchmark": "reward_throughput",
        "ratios": {
            "score_vs_rouge_unique": median_ratio(rates["score_unique"], rates["rouge_unique"]),
            "score_vs_rouge_repeated": median_ratio(rates["score_repeated"], rates["rouge_repeated"]),
        },
        "numbers": {
            "score_unique_per_s": round(best["score_unique"]),
            "rouge_unique_per_s": round(best["rouge_unique"]),
            "score_repeated_per_s": round(best["score_repeated"]),
            "rouge_repeated_per_s": round(best["rouge_repeated"]),
            "pairs_per_round": len(unique[0]),
            **{f"pairs_gold_{kind}": count for kind, count in kinds.items()},
            "rounds": rounds,
        },
        "pinned_core": core,
        "notes": (
            "Pairs per gold action: exact copy, near miss (one token changed), another element, wrong type. "
            "Baseline: rouge_score.RougeScorer(['rougeL']).score on name/text of same-type pairs only. "
            "Ratios: median over rounds of the two rates within a round; pairs/s: best round."
        ),
    }
