"""The live shop as a verl Interaction, for multi-turn rollouts on GPU clusters.

verl's multi-turn rollout (`actor_rollout_ref.rollout.multi_turn`, with an interaction config naming
`training.verl.live_shop_interaction.LiveShopInteraction`) calls, per sample:
`start_interaction(instance_id, **interaction_kwargs)` (the row's `seed` picks the shopper),
`generate_response(instance_id, messages)` after every assistant turn, and `calculate_score` /
`finalize_interaction` at the end. Each assistant turn is a response in the Shop-R1 format (a
rationale and an action, shop_env/response_format.py); the env scores it against the scripted
shopper's choice and the next user turn is the page the agent's own action led to. `live_rows`
writes the first turn of each episode with the same prompt builder the single-step data uses.

verl is GPU-only (the `[gpu]` extra); without it this class has no verl base and is exercised on CPU
by calling its coroutines directly (tests/test_live_shop_tools.py).
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from agents.context_builder import PromptBudget
from agents.prompts import build_user_message
from shop_env.live_shop import LiveShopEnv, visit_score

try:
    from verl.interactions.base import BaseInteraction
except ImportError:  # verl is installed on GPU clusters only
    BaseInteraction = object

INTERACTION_NAME = "live_shop"


def live_rows(n: int, tokenizer: Any, budget: PromptBudget, *, seed: int = 0) -> list[dict[str, Any]]:
    """The first turn of `n` live-shop episodes (seeds `seed`, `seed + 1`, ...) as verl RL rows."""
    env = LiveShopEnv(context=budget.context or "latest")
    rows = []
    for episode in range(seed, seed + n):
        observation, _ = env.reset(seed=episode)
        prompt = budget.build(observation, tokenizer)
        rows.append({
            "data_source": INTERACTION_NAME,
            "prompt": prompt.messages,
            "extra_info": {"interaction_kwargs": {"name": INTERACTION_NAME, "seed": episode}},
        })
    return rows


class LiveShopInteraction(BaseInteraction):
    """One live-shop visit per verl instance id (see the module docstring)."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.name = config.get("name", INTERACTION_NAME)
        self.context = config.get("context", "latest")
        self._visits: dict[str, dict[str, Any]] = {}

    async def start_interaction(self, instance_id: str | None = None, seed: int = 0, **kwargs: Any) -> str:
        instance_id = instance_id or uuid4().hex
        env = LiveShopEnv(context=self.context)
        env.reset(seed=int(seed))
        self._visits[instance_id] = {"env": env, "rewards": [], "outcome_reward": 0.0, "done": False}
        return instance_id

    async def generate_response(self, instance_id: str, messages: list[dict[str, Any]], **kwargs: Any
                                ) -> tuple[bool, str, float, dict[str, Any]]:
        """Step the visit with the last assistant turn; returns (done, next user turn, turn reward, info)."""
        visit = self._visits[instance_id]
        if visit["done"]:
            return True, "The visit is over.", 0.0, {}
        replies = [message for message in messages if message.get("role") == "assistant"]
        text = replies[-1].get("content", "") if replies else ""
        observation, reward, terminated, truncated, info = visit["env"].step(text if isinstance(text, str) else "")
        visit["rewards"].append(info["reward"].total)
        visit["outcome_reward"] = info.get("outcome_reward", 0.0)
        extra = {"parse_error": info["parse_error"], "reference_action": info["reference_action"].to_dict()}
        if terminated or truncated:
            visit["done"] = True
            extra.update(outcome=info["outcome"], purchase_fits=info["purchase_fits"], shopper_outcome=info["shopper_outcome"])
            return True, f"The visit is over: {info['outcome']}.", reward, extra
        return False, build_user_message(observation), reward, extra

    async def calculate_score(self, instance_id: str | None = None, **kwargs: Any) -> float:
        """The visit's score: mean per-turn reward plus the outcome reward."""
        visit = self._visits.get(instance_id) if instance_id is not None else None
        return visit_score(visit["rewards"], visit["outcome_reward"]) if visit else 0.0

    async def finalize_interaction(self, instance_id: str | None = None, **kwargs: Any) -> None:
        self._visits.pop(instance_id, None)
