"""The live shop as a tool-calling environment for TRL's `GRPOTrainer(environment_factory=...)`.

    from trl import GRPOTrainer
    trainer = GRPOTrainer(model=..., args=GRPOConfig(max_steps=...), environment_factory=LiveShopTools,
                          train_dataset=live_prompts(256))

TRL creates one instance per rollout, calls `reset(**row)` (the row's `seed` picks the shopper; the
first page is appended to the prompt), exposes the public methods as tools the model may call
(`click`, `type_and_submit`, `terminate`: each returns the next page, or why nothing happened), and
scores the finished rollout with `get_reward()`: the mean per-step Shop-R1 reward against the scripted
shopper's choice in each state the agent reached (shop_env/live_shop.py), plus the outcome reward of a
purchase that fits the persona. A rollout that calls no tool earns 0. The tools take actions, not
JSON responses, so the format term is met by construction and there is no rationale to score.
"""

from __future__ import annotations

from typing import Any

from shop_env.live_shop import LiveShopEnv, visit_score
from shop_env.session import Action

INSTRUCTIONS = (
    "You are the shopper described below, browsing an online shop. Act as this person would, one tool "
    "call at a time: click an element by its name, type into the search box and submit, or leave the shop."
)


def live_prompts(n: int, *, seed: int = 0):
    """A `datasets.Dataset` of `n` live-shop episodes: a `prompt` (the instructions) and each episode's `seed`."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": [{"role": "user", "content": INSTRUCTIONS}], "seed": seed + i} for i in range(n)])


class LiveShopTools:
    """One live-shop visit driven through tool calls (see the module docstring)."""

    def __init__(self):
        self.env = LiveShopEnv(context="latest")
        self.rewards: list[float] = []
        self.outcome_reward = 0.0
        self.done = True

    def reset(self, **row: Any) -> str:
        """Start the visit of the row's `seed`; returns the persona and the first page for the prompt."""
        observation, _ = self.env.reset(seed=int(row.get("seed", 0)))
        self.rewards, self.outcome_reward, self.done = [], 0.0, False
        return f"Persona: {observation['persona']}\n\nCurrent page:\n{observation['page']}"

    def click(self, name: str) -> str:
        """Click an element of the current page.

        Args:
            name: The element's name attribute, for example search_results.trail_runner_pro.view_product.

        Returns:
            The next page, or why nothing happened.
        """
        return self._act(Action("click", name=name) if isinstance(name, str) and name else None)

    def type_and_submit(self, name: str, text: str) -> str:
        """Type text into an input of the current page and submit it.

        Args:
            name: The input's name attribute, for example header.search_box.search_input.
            text: What to type.

        Returns:
            The next page, or why nothing happened.
        """
        valid = isinstance(name, str) and name and isinstance(text, str)
        return self._act(Action("type_and_submit", name=name, text=text) if valid else None)

    def terminate(self) -> str:
        """Leave the shop, ending the visit.

        Returns:
            How the visit ended.
        """
        return self._act(Action("terminate"))

    def get_reward(self) -> float:
        """The rollout's reward: mean per-step reward plus the outcome reward (0 when no tool was called)."""
        return visit_score(self.rewards, self.outcome_reward)

    def _act(self, action: Action | None) -> str:
        if self.done:
            return "The visit is over; no more actions."
        if action is None:
            return "That call had an empty or malformed argument; nothing happened."
        observation, _, terminated, truncated, info = self.env.step(action)
        self.rewards.append(info["reward"].total)
        self.outcome_reward = info.get("outcome_reward", 0.0)
        if terminated or truncated:
            self.done = True
            return f"The visit is over: {info['outcome']}."
        error = observation["last_action_error"]
        return (f"{error}\n\n" if error else "") + f"Current page:\n{observation['page']}"
