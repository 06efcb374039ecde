"""How close a predicted action is to the human's: ROUGE-L and exact match, defined once.

The reward (`shop_env.dars`, `shop_env.rewards`) and the metrics (`shop_env.metrics`) both read them
from here, so the binary reward and exact-match accuracy cannot drift apart.

ROUGE-L is the `rouge-score` package's `rougeL` F-measure, the paper's metric. Its default tokenizer
lowercases, turns every run of characters other than ASCII letters and digits into a separator, and
drops empty tokens: `search_results.trail_runner.view_product` is the six tokens
`search results trail runner view product`, so names sharing their `search_results ... view_product`
frame already share four tokens, and non-ASCII text ("café" -> `caf`, "日本語" -> nothing) loses
characters. That behaviour is kept (it is the paper's metric) with one addition: identical strings
(after stripping whitespace) score 1.0, which fixes identical strings the tokenizer reduces to nothing
(rouge-score gives them 0). A similarity below the threshold counts as 0; at or above it the soft
value counts (docs/contract.md, the reward; the paper says "exceeds").

The number is rouge-score's, the way it is computed is not: rouge-score fills a Python table of
n x m LCS lengths, `lcs_length` computes the same length bit-parallel in one pass over big-int bit
masks (8,000 tokens a side, measured on 2 shared cores: rouge-score 50 s and ~520 MB, this 0.06 s).
Values are read up to `MAX_ROUGE_TOKENS` tokens each, which bounds a comparison whatever the data holds.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from itertools import islice

from rouge_score.scoring import fmeasure

from shop_env.response_format import parse_action_object
from shop_env.session import CLICK, TYPE_AND_SUBMIT, Action, SessionFormatError

DEFAULT_ROUGE_THRESHOLD = 0.75
"""docs/contract.md, the reward; the same default as `RewardConfig.rouge_threshold`."""
THRESHOLD_SLACK = 1e-12
"""rouge-score computes 2PR/(P+R) in floating point, which can land one rounding step below a
similarity that is exactly the threshold ("a b c" vs "a b c d e" is 2*3/8 = 0.75 but computes as
0.7499999999999999); the slack keeps those at the threshold."""

MAX_ROUGE_TOKENS = 10_000
"""Tokens of each value ROUGE-L reads; a longer value is compared by its first 10,000. Element names
and search queries are tens of tokens, so real values are never cut, and comparing two values of
10,000 tokens takes ~0.05 s (`lcs_length`) whatever a session file or a response holds."""

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
    predicted, gold = rouge_tokens(prediction), rouge_tokens(reference)
    n, m = len(predicted), len(gold)
    if n == 0 or m == 0 or 2 * min(n, m) / (n + m) < threshold - THRESHOLD_SLACK:
        return 0.0
    similarity = _rouge_l_of_tokens(predicted, gold)
    return similarity if similarity >= threshold - THRESHOLD_SLACK else 0.0



def coerce_gold_action(value: Action | Mapping) -> Action:
    """The human's action as an `Action`; a malformed one is a data error and raises."""
    if isinstance(value, Action):
        return value
    try:
        action = Action.from_dict(value)
    except SessionFormatError as err:
        raise SessionFormatError(f"gold action: {err}") from None
    if action is None:
        raise SessionFormatError("gold action: the action mapping dropped it")
    return action


def coerce_predicted_action(value: Action | Mapping | None) -> Action | None:
    """A predicted action, or None when it is not one (which then counts as invalid)."""
    if value is None or isinstance(value, Action):
        return value
    if isinstance(value, Mapping):
        return parse_action_object(value)[0]
    raise TypeError(
        f"expected an Action, an action dict or None, got {type(value).__name__}; "
        "parse raw responses with shop_env.parse_response(text).action first"
    )


def exact_match(
    pred: Action | None, gold: Action, rouge_threshold: float = DEFAULT_ROUGE_THRESHOLD
) -> bool:
    """Whether a predicted action counts as the human's action (docs/contract.md, metrics).

    >>> gold = Action("type_and_submit", name="header.search_box.search_input", text="running shoes")
    >>> exact_match(Action("type_and_submit", name=" header.search_box.search_input", text="Running shoes"), gold)
    True
    >>> exact_match(Action("click", name="header.search_box.search_input"), gold)
    False
    """
    if pred is None or pred.type != gold.type:
        return False
    if gold.type == CLICK:
        return (pred.name or "").strip() == (gold.name or "").strip()
    if gold.type == TYPE_AND_SUBMIT:
        same_name = (pred.name or "").strip() == (gold.name or "").strip()
        # thresholded_rouge_l is > 0 exactly when the similarity reaches a threshold above 0.
        return same_name and (
            rouge_threshold <= 0
            or thresholded_rouge_l(pred.text or "", gold.text or "", rouge_threshold) > 0
        )
    return True


