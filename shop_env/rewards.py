"""Shop-R1's hybrid reward (paper Eq. 4, Table 1): format + action reward + alpha x self-certainty.

    total = format + action + alpha * s

- format: `config.format_weight` (0.5) when the response parses (`shop_env.format_reward`); a response
  that fails the format scores 0 in total, whatever else it says, with the parse error in `.error`.
- action, hierarchical (default): type + attribute + DARS-scaled value (`shop_env.dars`, Table 1).
- action, binary (baseline and ablation): 1 when the action matches exactly (`shop_env.matching.
  exact_match`; docs/contract.md, metrics), else 0.
- rationale: alpha x s, where s is the self-certainty KL(U || p) of the rationale tokens
  (`shop_env.self_certainty`), computed by the trainer from the policy's logits and passed in.

`max_reward(gold_action, config)` bounds format + action; the rationale term comes on top, at most
alpha x `MAX_SELF_CERTAINTY`: s is a KL divergence with no bound of its own (about 26 nats in the
paper's Figure 1), so a value past that cap, like a non-finite one, is a caller's bug and pays 0 with
the reason in `.error`. `RewardConfig.upper_bound` is the most any response can earn, and a config
whose bound would overflow float32 (the trainers' reward tensors) is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, NamedTuple

from shop_env.dars import hierarchical_action_reward, max_hierarchical_action_reward
from shop_env.format_reward import format_reward
from shop_env.matching import DEFAULT_ROUGE_THRESHOLD, coerce_gold_action, exact_match
from shop_env.response_format import ParsedResponse, parse_action_object, parse_response
from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT, Action

MAX_SELF_CERTAINTY = 1000.0
"""Most nats of self-certainty the rationale reward accepts. s = logsumexp(z) - mean(z) - log|V| is at
most the gap between a position's top and mean logit (over the temperature): tens of nats for real
language models (the paper's Figure 1: ~26). 1000 nats is far past any of them, so a larger s comes
from a bug (a sum over tokens instead of a mean, scores that are not logits) and pays 0."""
FLOAT32_MAX = 3.4028234663852886e38
"""Largest float32: trainers keep rewards in float32 tensors, so every reward must stay below it."""

ACTION_REWARDS = ("hierarchical", "binary")
ABLATIONS: dict[str, dict[str, Any]] = {
    "no_format": {"use_format": False},
    "no_rationale": {"alpha": 0.0},
    "no_dars": {"dars_factor": 1.0},
    "binary": {"action_reward": "binary"},
}
"""The reward rows of the paper's Table 4, as overrides of the default config."""


@dataclass(frozen=True)
class RewardConfig:
    """Every number of the hybrid reward, each defined here once; defaults are the paper's (section 4.1,
    Table 1; docs/contract.md, the reward)."""

    dars_factor: float = 1000.0
    """Difficulty-aware reward scaling: multiplies the ROUGE-L of a click's name and of a
    type_and_submit's text, so the hard long-text values outweigh the easy type reward. 1 = no DARS."""
    rouge_threshold: float = DEFAULT_ROUGE_THRESHOLD
    """ROUGE-L similarities below this count 0 in the value reward and in exact match; in [0, 1]."""
    alpha: float = 0.005
    """Weight of the rationale's self-certainty s (nats); the paper's Figure 1 shows +0.13 ~ 26 x 0.005."""
    format_weight: float = 0.5
    """Reward for a response that parses (Table 1)."""
    type_weight: float = 0.3
    """Reward for the right action type, the same for every type (Table 1)."""
    click_name_weight: float = 0.2
    """Attribute reward of a click with a non-empty predicted `name` (Table 1)."""
    type_name_weight: float = 0.1
    """Attribute reward of a type_and_submit with a non-empty predicted `name` (Table 1)."""
    type_text_weight: float = 0.1
    """Attribute reward of a type_and_submit with a non-empty predicted `text` (Table 1)."""
    type_name_value_weight: float = 0.1
    """Weight of ROUGE-L(name) in a type_and_submit's value reward; only its `text` gets DARS (Table 1)."""
    action_reward: Literal["hierarchical", "binary"] = "hierarchical"
    """"hierarchical" (Table 1 with DARS) or "binary" (1 for an exact match, the paper's baseline)."""
    use_format: bool = True
    """Pay the format reward; when False the format still gates (a parse failure scores 0 in total)."""

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "float" and (
                isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value) or value < 0
            ):
                raise ValueError(
                    f"RewardConfig.{field.name} = {_short(value)}: expected a finite number >= 0 "
                    f"(default {field.default})"
                )
        if self.dars_factor <= 0:
            raise ValueError(
                f"RewardConfig.dars_factor = {self.dars_factor}: must be > 0 (use 1.0 to switch DARS "
                "off, as the paper's no-DARS ablation does)"
            )
        if self.rouge_threshold > 1:
            raise ValueError(
                f"RewardConfig.rouge_threshold = {self.rouge_threshold}: ROUGE-L is at most 1, so no "
                "value could ever score; use a value in [0, 1] (paper: 0.75)"
            )
        if self.action_reward not in ACTION_REWARDS:
            raise ValueError(
                f"RewardConfig.action_reward = {self.action_reward!r}: expected one of "
                f"{', '.join(ACTION_REWARDS)}"
            )
        if not isinstance(self.use_format, bool):
            raise ValueError(f"RewardConfig.use_format = {self.use_format!r}: expected True or False")
        if not self.upper_bound < FLOAT32_MAX:
            raise ValueError(
                f"RewardConfig: the largest reward, {self.max_total:.4g} for the action + alpha x "
                f"{MAX_SELF_CERTAINTY:g} nats, overflows float32 (max {FLOAT32_MAX:.4g}), which trainers keep "
                "rewards in; lower dars_factor, alpha or the weights"
            )

    @classmethod
    def ablation(cls, name: str) -> RewardConfig:
        """The default config with one of the paper's Table 4 reward switches flipped.

        >>> RewardConfig.ablation("no_dars").dars_factor
        1.0
        """
        if name == "no_sft":
            raise ValueError(
                "'no_sft' is a training switch (skip the SFT warm start), not a reward setting"
            )
        if name not in ABLATIONS:
            raise ValueError(f"unknown ablation {name!r}; expected one of {', '.join(ABLATIONS)}")
        return replace(cls(), **ABLATIONS[name])

    @property
    def max_total(self) -> float:
        """The most format + action can pay for any gold action (the rationale term comes on top).

        >>> RewardConfig().max_total, RewardConfig.ablation("binary").max_total
        (1001.1, 1.5)
        """
        return max(max_reward(gold, self) for gold in _REPRESENTATIVE_GOLDS)

    @property
    def upper_bound(self) -> float:
        """The most any response can earn: `max_total` + alpha x `MAX_SELF_CERTAINTY`.

        >>> RewardConfig().upper_bound
        1006.1
        """
        return self.max_total + self.alpha * MAX_SELF_CERTAINTY


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _finite(value: int | float) -> bool:
    """math.isfinite, and False for an int too large for a float (where math.isfinite raises)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


_REPRESENTATIVE_GOLDS = (
    Action(CLICK, name="x"),
    Action(TYPE_AND_SUBMIT, name="x", text="x"),
    Action(TERMINATE),
)


class RewardBreakdown(NamedTuple):
    """Every term of one scored response; `as_dict()` gives them namespaced for logging.

    A named tuple: immutable, and unpacked like one by callers that want a few terms.

    - total = format + action + rationale.
    - type, attribute, value: the hierarchical terms (binary mode pays nothing per term, see
      `action`); value holds the ROUGE-L terms, DARS-scaled for a click's name and a
      type_and_submit's text.
    - action: the whole action reward: type + attribute + value, or the binary exact-match reward.
    - self_certainty: the raw self-certainty s (nats) passed in, or None when none was given;
      rationale = alpha x s, 0 when s is None.
    - error: why the response scored 0 (the parse error), or why the rationale term was dropped.
    - predicted_action: the action the response was read as; None exactly when the format failed.
    """

    total: float = 0.0
    format: float = 0.0
    type: float = 0.0
    attribute: float = 0.0
    value: float = 0.0
    action: float = 0.0
    self_certainty: float | None = None
    rationale: float = 0.0
    error: str | None = None
    predicted_action: Action | None = None

    def as_dict(self) -> dict[str, float]:
        """Floats under the same keys for every sample (self-certainty 0.0 when not computed)."""
        return {
            "reward/total": self.total,
            "reward/format": self.format,
            "reward/type": self.type,
            "reward/attribute": self.attribute,
            "reward/dars_value": self.value,
            "reward/action": self.action,
            "reward/self_certainty": self.self_certainty or 0.0,
            "reward/rationale": self.rationale,
        }


def score_response(
    text: str,
    gold_action: Action | Mapping,
    config: RewardConfig | None = None,
    self_certainty: float | None = None,
) -> RewardBreakdown:
    """Score a model's raw response against the human's action; never raises on `text`.

    `gold_action` comes from the data, so a malformed one raises `SessionFormatError`.

    >>> gold = {"type": "click", "name": "search_results.trail_runner.view_product"}
    >>> score_response('{"rationale": "Looks light.", "action": ' + str(gold).replace("'", '"') + '}',
    ...                gold).total
    1001.0
    >>> score_response('{"rationale": "Bye.", "action": {"type": "terminate"}}', gold).total
    0.5
    >>> result = score_response('{"rationale": "Hmm.", "action": {"type": "hover"}}', gold)
    >>> result.total, result.error
    (0.0, "unknown action type 'hover'; expected one of click, type_and_submit, terminate")
    """
    return _breakdown(parse_response(text), coerce_gold_action(gold_action), config or DEFAULT_CONFIG, self_certainty)


def score_action(
    pred_action: Action | Mapping | None,
    gold_action: Action | Mapping,
    config: RewardConfig | None = None,
    self_certainty: float | None = None,
) -> RewardBreakdown:
    """Score an action emitted directly (no JSON text): a valid action satisfies the format.

    A dict is read like the `action` object of a response; None or anything else scores 0.

    >>> score_action({"type": "terminate"}, {"type": "terminate"}).total
    0.8
    >>> score_action(None, {"type": "terminate"}).error
    'no action'
    """
    config = config or DEFAULT_CONFIG
    gold = coerce_gold_action(gold_action)
    if isinstance(pred_action, Action):
        action, error = pred_action, None
    elif pred_action is None:
        action, error = None, "no action"
    elif isinstance(pred_action, Mapping):
        action, error = parse_action_object(pred_action)
    else:
        action, error = None, f"expected an Action, a dict or None, got {type(pred_action).__name__}"
    return _breakdown(ParsedResponse(None, action, error), gold, config, self_certainty)


def max_reward(gold_action: Action | Mapping, config: RewardConfig | None = None) -> float:
    """The most format + action can pay against `gold_action` (what copying the human earns).

    >>> max_reward({"type": "terminate"}), max_reward({"type": "click", "name": "a.b"})
    (0.8, 1001.0)
    """
    config = config or DEFAULT_CONFIG
    gold = coerce_gold_action(gold_action)
    format_part = config.format_weight if config.use_format else 0.0
    if config.action_reward == "binary":
        return format_part + 1.0
    return format_part + max_hierarchical_action_reward(gold, config)


DEFAULT_CONFIG = RewardConfig()  # here: validating a config calls max_reward


def _breakdown(
    parsed: ParsedResponse, gold: Action, config: RewardConfig, self_certainty: float | None
) -> RewardBreakdown:
    rationale, certainty, certainty_error = _rationale_reward(self_certainty, config.alpha)
    if not parsed.ok:
        return RewardBreakdown(self_certainty=certainty, error=parsed.error)
    format_part = format_reward(parsed, config.format_weight) if config.use_format else 0.0
    if config.action_reward == "binary":
        action_part = 1.0 if exact_match(parsed.action, gold, config.rouge_threshold) else 0.0
        terms = {"action": action_part}
    else:
        hierarchical = hierarchical_action_reward(parsed.action, gold, config)
        action_part = hierarchical.total
        terms = {
            "type": hierarchical.type,
            "attribute": hierarchical.attribute,
            "value": hierarchical.value,
            "action": action_part,
        }
    return RewardBreakdown(
        total=format_part + action_part + rationale,
        format=format_part,
        self_certainty=certainty,
        rationale=rationale,
        error=certainty_error,
        predicted_action=parsed.action,
        **terms,
    )


def _rationale_reward(
    self_certainty: float | None, alpha: float
) -> tuple[float, float | None, str | None]:
    """(alpha x s, s as a float, error). An s that is not a finite KL in [0, MAX_SELF_CERTAINTY] (a
    diverged model or a caller bug) pays 0 and says so, because one NaN or huge reward would poison a
    whole GRPO group's advantages. Never raises, whatever the object."""
    if self_certainty is None:
        return 0.0, None, None
    not_a_number = (
        f"self-certainty of type {type(self_certainty).__name__} is not a number; "
        "rationale reward set to 0"
    )
    if isinstance(self_certainty, str | bytes | bool):
        return 0.0, None, not_a_number
    try:
        value = float(self_certainty)
    except OverflowError:  # an int past float range, e.g. 10**400
        return 0.0, None, (
            f"self-certainty is an integer too large for a float (over {MAX_SELF_CERTAINTY:g} nats); "
            "rationale reward set to 0"
        )
    except Exception:  # TypeError, ValueError (a tensor of several values), whatever __float__ raises
        return 0.0, None, not_a_number
    if not math.isfinite(value) or value < 0:
        return 0.0, None, f"self-certainty {value} is not a finite KL >= 0; rationale reward set to 0"
    if value > MAX_SELF_CERTAINTY:
        return 0.0, None, (
            f"self-certainty {value:.4g} is over {MAX_SELF_CERTAINTY:g} nats, more than any language model "
            "gives (a sum over tokens instead of the mean?); rationale reward set to 0"
        )
    return alpha * value, value, None
