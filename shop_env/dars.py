"""Hierarchical action reward with difficulty-aware reward scaling (DARS): the paper's Table 1.

Once the predicted action type equals the human's, the type earns `type_weight` (0.3) whatever the
type; only the harder types unlock more, through their sub-actions:

| gold type       | attribute reward                              | value reward                                 |
|-----------------|-----------------------------------------------|----------------------------------------------|
| terminate       | none                                          | none                                         |
| click           | +0.2 if `name` non-empty                      | + DARS x ROUGE-L(name)                       |
| type_and_submit | +0.1 if `name` non-empty, +0.1 if `text` is   | + 0.1 x ROUGE-L(name) + DARS x ROUGE-L(text) |

A wrong type earns nothing here. "Non-empty" means not blank after stripping whitespace. DARS (1000 by
default) makes the long-text value worth far more than the type, so spamming the easy `terminate` is
no longer competitive (paper section 3).

ROUGE-L is the `rouge-score` package's `rougeL` F-measure, the paper's metric. Its default tokenizer
lowercases, turns every run of characters other than ASCII letters and digits into a separator, and
drops empty tokens: `search_results.trail_runner.view_product` is the six tokens
`search results trail runner view product`, so names sharing their `search_results ... view_product`
frame already share four tokens, and non-ASCII text ("café" -> `caf`, "日本語" -> nothing) loses
characters. We keep that behaviour (it is the paper's metric) with one addition: identical strings
(after stripping whitespace) score 1.0 without calling rouge-score, which is both the hot path of an
oracle policy and the fix for identical strings the tokenizer reduces to nothing (rouge-score gives
them 0). A similarity below `rouge_threshold` counts as 0; at or above it the soft value counts
(docs/contract.md, the reward; the paper says "exceeds", docs/contract.md implements "at or above").

The number is rouge-score's, the way it is computed is not: rouge-score fills a Python table of
n x m LCS lengths, `lcs_length` computes the same length bit-parallel in one pass over big-int bit
masks (8,000 tokens a side, measured on 2 shared cores: rouge-score 50 s and ~520 MB, this 0.06 s).
Values are read up to `MAX_ROUGE_TOKENS` tokens each, which bounds a comparison whatever the data holds.

A consequence worth knowing: sibling elements share most of a dotted name. A click on the wrong
button of the right product, `search_results.trail_runner.add_to_cart` for
`search_results.trail_runner.view_product`, shares 4 tokens of 7 and 6 (F = 8/13 ~ 0.62, below the
threshold), but with a longer slug, `search_results.brooks_ghost_15_mens_running_shoe.add_to_cart`
shares 8 tokens of 11 and 10 with the `view_product` name (F = 16/21 ~ 0.76) and earns 762 of the
1000. That is the paper's metric; `experiments/reward_hacking.py` measures such near misses, and exact
match (`shop_env.metrics`) compares names exactly.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import TYPE_CHECKING

from rouge_score.scoring import fmeasure

from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT, Action

if TYPE_CHECKING:
    from shop_env.rewards import RewardConfig

CLICK_NAME_REWARD = 0.2
"""Attribute reward of a click whose predicted `name` is non-empty (Table 1)."""
TYPE_NAME_REWARD = 0.1
"""Attribute reward of a type_and_submit whose predicted `name` is non-empty (Table 1)."""
TYPE_TEXT_REWARD = 0.1
"""Attribute reward of a type_and_submit whose predicted `text` is non-empty (Table 1)."""
TYPE_NAME_VALUE_WEIGHT = 0.1
"""Weight of ROUGE-L(name) in a type_and_submit's value reward; only its `text` gets DARS (Table 1)."""

THRESHOLD_SLACK = 1e-12
"""rouge-score computes 2PR/(P+R) in floating point, which can land one rounding step below a
similarity that is exactly the threshold ("a b c" vs "a b c d e" is 2*3/8 = 0.75 but computes as
0.7499999999999999); the slack keeps those at the threshold."""

MAX_ROUGE_TOKENS = 10_000
"""Tokens of each value ROUGE-L reads; a longer value is compared by its first 10,000. Element names
and search queries are tens of tokens, so real values are never cut, and comparing two values of
10,000 tokens takes ~0.05 s (`lcs_length`) whatever a session file or a response holds."""

_CACHED_PAIR_CHARS = 512
"""Only pairs this short are memoised: GRPO groups repeat the same short names, and long strings
would make the cache hold megabytes."""

_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")
"""rouge-score's default tokens: lowercase, then the runs of ASCII letters and digits."""


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokens of `text` (no stemming), the first `MAX_ROUGE_TOKENS` of them.

    >>> rouge_tokens("search_results.Trail-Runner.view_product")
    ['search', 'results', 'trail', 'runner', 'view', 'product']
    """
    return [match.group() for match in islice(_ROUGE_TOKEN.finditer(text.lower()), MAX_ROUGE_TOKENS)]


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence of two token sequences.

    Bit-parallel (Allison and Dix 1986, in Hyyro's 2004 form): after reading a[:j], bit i of `row`
    is clear exactly when LCS(a[:j], b[:i + 1]) > LCS(a[:j], b[:i]), so the clear bits count the LCS
    and one pass over `a` with big-int operations replaces the len(a) x len(b) table of the dynamic
    programme, in O(len(b)) memory. Exactly the table's number.

    >>> lcs_length("a b c d".split(), "a c b d".split())
    3
    """
    if len(a) < len(b):
        a, b = b, a  # the mask runs over the shorter sequence
    masks: dict[Hashable, int] = {}
    for index, token in enumerate(b):
        masks[token] = masks.get(token, 0) | 1 << index
    full = (1 << len(b)) - 1
    row = full
    for token in a:
        match = masks.get(token)
        if match:
            low = row & match
            row = ((row + low) | (row - low)) & full
    return len(b) - row.bit_count()


def _rouge_l_of_tokens(prediction: list[str], reference: list[str]) -> float:
    """rouge-score's `_score_lcs` F-measure: P = LCS / len(prediction), R = LCS / len(reference)."""
    if not prediction or not reference:
        return 0.0
    common = lcs_length(prediction, reference)
    return float(fmeasure(common / len(prediction), common / len(reference)))


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure of two strings, as the `rouge-score` package computes it (symmetric).

    >>> rouge_l("search_results.trail_runner.view_product", "search_results.road_runner.view_product")
    0.8333333333333334
    >>> rouge_l("日本語", " 日本語 "), rouge_l("日本語", "中文")
    (1.0, 0.0)
    """
    if prediction.strip() == reference.strip():
        return 1.0
    if len(prediction) + len(reference) <= _CACHED_PAIR_CHARS:
        return _cached_rouge_l(prediction, reference)
    return _rouge_l_of_tokens(rouge_tokens(prediction), rouge_tokens(reference))


@lru_cache(maxsize=65_536)
def _cached_rouge_l(prediction: str, reference: str) -> float:
    return _rouge_l_of_tokens(rouge_tokens(prediction), rouge_tokens(reference))


def thresholded_rouge_l(prediction: str, reference: str, threshold: float) -> float:
    """ROUGE-L when it reaches `threshold`, else 0: the soft credit of a value sub-action.

    The LCS of n and m tokens is at most min(n, m) long, so the F-measure is at most
    2 min(n, m) / (n + m); when that bound is already below the threshold the LCS is skipped.

    >>> thresholded_rouge_l("red running shoes", "red running shoe", 0.75)
    0.0
    >>> thresholded_rouge_l("red trail running shoes", "red running shoes", 0.75)
    0.8571428571428571
    """
    if prediction.strip() == reference.strip():
        return 1.0
    if len(prediction) + len(reference) <= _CACHED_PAIR_CHARS:
        similarity = _cached_rouge_l(prediction, reference)
    else:
        predicted, gold = rouge_tokens(prediction), rouge_tokens(reference)
        n, m = len(predicted), len(gold)
        if n == 0 or m == 0 or 2 * min(n, m) / (n + m) < threshold - THRESHOLD_SLACK:
            return 0.0
        similarity = _rouge_l_of_tokens(predicted, gold)
    return similarity if similarity >= threshold - THRESHOLD_SLACK else 0.0


def _non_empty(value: str | None) -> bool:
    return bool(value and value.strip())


@dataclass(frozen=True)
class HierarchicalReward:
    """The three action terms of Table 1 for one prediction."""

    type: float = 0.0
    attribute: float = 0.0
    value: float = 0.0

    @property
    def total(self) -> float:
        return self.type + self.attribute + self.value


def hierarchical_action_reward(
    pred: Action, gold: Action, config: RewardConfig
) -> HierarchicalReward:
    """Type, attribute and DARS-scaled value reward of a predicted action against the human's.

    >>> from shop_env.rewards import RewardConfig
    >>> gold = Action("type_and_submit", name="header.search_box.search_input", text="running shoes")
    >>> hierarchical_action_reward(Action("click", name="x"), gold, RewardConfig())
    HierarchicalReward(type=0.0, attribute=0.0, value=0.0)
    >>> hierarchical_action_reward(gold, gold, RewardConfig())
    HierarchicalReward(type=0.3, attribute=0.2, value=1000.1)
    """
    if pred.type != gold.type:
        return HierarchicalReward()
    threshold = config.rouge_threshold
    if gold.type == CLICK:
        return HierarchicalReward(
            type=config.type_weight,
            attribute=CLICK_NAME_REWARD if _non_empty(pred.name) else 0.0,
            value=config.dars_factor * thresholded_rouge_l(pred.name or "", gold.name or "", threshold),
        )
    if gold.type == TYPE_AND_SUBMIT:
        attribute = (TYPE_NAME_REWARD if _non_empty(pred.name) else 0.0) + (
            TYPE_TEXT_REWARD if _non_empty(pred.text) else 0.0
        )
        value = TYPE_NAME_VALUE_WEIGHT * thresholded_rouge_l(
            pred.name or "", gold.name or "", threshold
        ) + config.dars_factor * thresholded_rouge_l(pred.text or "", gold.text or "", threshold)
        return HierarchicalReward(type=config.type_weight, attribute=attribute, value=value)
    return HierarchicalReward(type=config.type_weight)


def max_hierarchical_action_reward(gold: Action, config: RewardConfig) -> float:
    """The most any prediction can earn against `gold`: field by field, the better of copying the
    human's value (value reward, plus the attribute reward when it is non-empty) or, when the human's
    value is blank, writing any non-empty value (attribute reward only)."""
    if gold.type == TERMINATE:
        return config.type_weight
    if gold.type == CLICK:
        return config.type_weight + _best_field(gold.name, CLICK_NAME_REWARD, config.dars_factor)
    return (
        config.type_weight
        + _best_field(gold.name, TYPE_NAME_REWARD, TYPE_NAME_VALUE_WEIGHT)
        + _best_field(gold.text, TYPE_TEXT_REWARD, config.dars_factor)
    )


def _best_field(gold_value: str | None, attribute_reward: float, value_weight: float) -> float:
    copied = value_weight + (attribute_reward if _non_empty(gold_value) else 0.0)
    return max(copied, attribute_reward)
