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

ROUGE-L and its threshold are `shop_env.matching`'s (the same ones exact match uses). The weights
are `RewardConfig` fields, each defined once there.

A consequence worth knowing: sibling elements share most of a dotted name. A click on the wrong
button of the right product, `search_results.trail_runner.add_to_cart` for
`search_results.trail_runner.view_product`, shares 4 tokens of 7 and 6 (F = 8/13 ~ 0.62, below the
threshold), but with a longer slug, `search_results.brooks_ghost_15_mens_running_shoe.add_to_cart`
shares 8 tokens of 11 and 10 with the `view_product` name (F = 16/21 ~ 0.76) and earns 762 of the
1000. That is the paper's metric; `experiments/reward_hacking.py` measures such near misses, and exact
match (`shop_env.matching`) compares names exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shop_env.matching import thresholded_rouge_l
from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT, Action

if TYPE_CHECKING:  # annotations only: rewards imports this module
    from shop_env.rewards import RewardConfig


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
            attribute=config.click_name_weight if _non_empty(pred.name) else 0.0,
            value=config.dars_factor * thresholded_rouge_l(pred.name or "", gold.name or "", threshold),
        )
    if gold.type == TYPE_AND_SUBMIT:
        attribute = (config.type_name_weight if _non_empty(pred.name) else 0.0) + (
            config.type_text_weight if _non_empty(pred.text) else 0.0
        )
        value = config.type_name_value_weight * thresholded_rouge_l(
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
        return config.type_weight + _best_field(gold.name, config.click_name_weight, config.dars_factor)
    return (
        config.type_weight
        + _best_field(gold.name, config.type_name_weight, config.type_name_value_weight)
        + _best_field(gold.text, config.type_text_weight, config.dars_factor)
    )


def _best_field(gold_value: str | None, attribute_reward: float, value_weight: float) -> float:
    copied = value_weight + (attribute_reward if _non_empty(gold_value) else 0.0)
    return max(copied, attribute_reward)
