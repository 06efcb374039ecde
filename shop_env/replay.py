"""`shop-r1 replay`: walk one session step by step in the terminal and show how a policy scores.

For each step it shows what the page offers, what the policy did, what the human did and the reward
breakdown; at the end, the totals next to the maximum the session allows. Everything that comes from
the data or the policy (ids, persona, titles, element names, rationales, actions) goes through `shown`,
so it prints as written: never read as rich markup, lone surrogates as their escapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import gymnasium as gym
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import shop_env  # noqa: F401  (registers the env id)
from shop_env.atomic_io import writable
from shop_env.rewards import RewardConfig, max_reward
from shop_env.session import Session
from shop_env.simplify_html import interactive_elements, page_title

ELEMENTS_SHOWN = 8
"""How many of the page's interactive element names to print per step (the rest are counted)."""


def shown(value: object) -> str:
    """Text from the data or a policy, ready for a rich markup string: `[/]` or `[black]` in a
    rationale print as themselves (unescaped, one crashes the replay and the other vanishes)."""
    return escape(writable(str(value)))


@dataclass
class ReplayResult:
    session_id: str
    rewards: list[float] = field(default_factory=list)
    max_rewards: list[float] = field(default_factory=list)
    components: list[dict[str, float | None]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.rewards)

    @property
    def max_total(self) -> float:
        return sum(self.max_rewards)


def replay_session(
    sessions: str | Sequence[Session],
    policy,
    *,
    session_id: str | None = None,
    context: str = "whole",
    reward_config: RewardConfig | None = None,
    console: Console | None = None,
    seed: int = 0,
) -> ReplayResult:
    """Replay one session (by id, else drawn with `seed`) with `policy`, printing each step."""
    console = console or Console()
    config = reward_config or RewardConfig()
    env = gym.make("ShopR1/SessionReplay-v0", sessions=sessions, context=context, reward_config=config)
    options = {"session_id": session_id} if session_id else None
    observation, info = env.reset(seed=seed, options=options)
    session = env.unwrapped.session
    result = ReplayResult(session.session_id)
    console.rule(f"session {shown(session.session_id)} · {len(session)} steps · context={context}")
    if session.persona:
        console.print(f"[bold]persona:[/] {shown(session.persona)}")
    terminated = False
    while not terminated:
        index = int(observation["step_index"])
        page = observation["page"]
        names = interactive_elements(page)
        offered = ", ".join(names[:ELEMENTS_SHOWN]) + (f", … (+{len(names) - ELEMENTS_SHOWN})" if len(names) > ELEMENTS_SHOWN else "")
        output = policy.act([observation])[0]
        step_input = {"response": output.text, "self_certainty": output.self_certainty}
        observation, reward, terminated, _truncated, info = env.step(step_input)
        gold = session.steps[index].action
        best = max_reward(gold, config)
        result.rewards.append(reward)
        result.max_rewards.append(best)
        result.components.append(info["reward"].as_dict())

        console.print(f"\n[bold cyan]step {index + 1}/{len(session)}[/] · {shown(page_title(page) or '(untitled page)')}")
        console.print(f"  [dim]page offers {len(names)} elements:[/] {shown(offered or '(none)')}")
        predicted = info["predicted_action"]
        console.print(f"  [bold]policy:[/] {shown(predicted) if predicted else '[red]invalid[/]: ' + shown(info['parse_error'])}")
        console.print(f"  [bold]human: [/] {shown(gold)}")
        rationale = session.steps[index].rationale
        if rationale:
            console.print(f"  [dim]human rationale: {shown(rationale)}[/]")
        parts = ", ".join(
            f"{key.split('/', 1)[1]}={value:.4g}" for key, value in info["reward"].as_dict().items() if value is not None and key != "reward/total"
        )
        colour = "green" if abs(reward - best) < 1e-9 else ("yellow" if reward > 0 else "red")
        console.print(f"  [bold]reward:[/] [{colour}]{reward:.4g}[/] of {best:.4g} ({parts})")

    table = Table(title=f"session {shown(session.session_id)}: totals")
    table.add_column("steps", justify="right")
    table.add_column("reward", justify="right")
    table.add_column("max reward", justify="right")
    table.add_column("share of max", justify="right")
    share = result.total / result.max_total if result.max_total else 0.0
    table.add_row(str(len(result.rewards)), f"{result.total:.4g}", f"{result.max_total:.4g}", f"{share:.1%}")
    console.print(table)
    env.close()
    return result
