"""The Shop-R1 rule reward as verl's custom reward function (`reward.custom_reward_function.path`).

verl's reward manager decodes each response and calls `compute_score` once per sample. It returns
`shop_env.rewards.score_response(...)` unchanged: `score` is the breakdown's total and every component
is there under its `reward/...` key, the same keys for every sample, so verl logs each term.

The rationale term alpha x self-certainty needs the policy's logits, which a reward function never
sees: `training/verl/self_certainty.py` adds it to `score` inside the trainer, before GRPO normalizes
the group. Here `reward/self_certainty` and `reward/rationale` stay 0.

Reward weights come from `reward.custom_reward_function.reward_kwargs` (verl passes them as keyword
arguments): any `RewardConfig` field, e.g. `dars_factor=1` for the no-DARS ablation.

    >>> gold = '{"type": "terminate"}'
    >>> compute_score("shop_r1", '{"rationale": "Too pricey.", "action": {"type": "terminate"}}', gold)["score"]
    0.8
    >>> compute_score("shop_r1", "I would leave.", gold)["reward/format"]
    0.0
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from shop_env.rewards import RewardBreakdown, RewardConfig, score_response
from training.verl.prepare import DATA_SOURCE

logger = logging.getLogger(__name__)

SCORE_KEY = "score"
VERL_CALL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})
"""Keyword arguments verl's reward managers add on their own (reward-model routing); ignored here."""
REWARD_FIELDS = frozenset(field.name for field in fields(RewardConfig))


def reward_config_from_kwargs(kwargs: Mapping[str, Any]) -> RewardConfig:
    """The `RewardConfig` that verl's `reward_kwargs` describe; an unknown name is a ValueError.

    >>> reward_config_from_kwargs({"dars_factor": 1}).dars_factor
    1
    """
    unknown = set(kwargs) - REWARD_FIELDS - VERL_CALL_KWARGS
    if unknown:
        raise ValueError(
            f"reward.custom_reward_function.reward_kwargs has unknown key(s) {sorted(unknown)}; "
            f"RewardConfig takes {sorted(REWARD_FIELDS)}"
        )
    return _cached_config(tuple(sorted((key, value) for key, value in kwargs.items() if key in REWARD_FIELDS)))


@functools.lru_cache(maxsize=64)
def _cached_config(items: tuple[tuple[str, Any], ...]) -> RewardConfig:
    """One RewardConfig per distinct kwargs: validated once, not once per sample."""
    return RewardConfig(**dict(items))


def _zero(reason: str, extra_info: Mapping[str, Any] | None) -> dict[str, float]:
    """Score 0 for a row that cannot be scored, saying which row and why (never an exception mid-step)."""
    where = ""
    if isinstance(extra_info, Mapping):
        where = f"session {extra_info.get('session_id')!r} step {extra_info.get('step_index')}: "
    logger.warning("%s%s; reward set to 0", where, reason)
    return {SCORE_KEY: 0.0, **RewardBreakdown().as_dict()}


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str | Mapping[str, Any],
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """Score one decoded response against the row's gold action (JSON text, or an already parsed object).

    Returns `{"score": total, "reward/format": ..., ...}`: `score_response(...).as_dict()` plus `score`.
    A model's response never raises; a row from another data source or with an unreadable gold action
    scores 0 with a warning naming the row. Unknown `kwargs` (a typo in reward_kwargs) raise ValueError.
    """
    config = reward_config_from_kwargs(kwargs)
    if data_source != DATA_SOURCE:
        return _zero(
            f"data_source {data_source!r} is not {DATA_SOURCE!r}; this reward scores only rows "
            "written by `shop-r1 prepare-verl`",
            extra_info,
        )
    try:
        gold = json.loads(ground_truth) if isinstance(ground_truth, str) else ground_truth
        breakdown = score_response(solution_str, gold, config)
    except ValueError as err:  # JSONDecodeError and SessionFormatError are ValueErrors
        return _zero(f"gold action {str(ground_truth)[:120]!r} is unusable ({err})", extra_info)
    return {SCORE_KEY: breakdown.total, **breakdown.as_dict()}
