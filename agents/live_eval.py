"""`shop-r1 eval --live`: a policy plays the live shop (`ShopR1/LiveShop-v0`) for many visits.

    shop-r1 eval --live --policy heuristic --episodes 200 --out runs/live-heuristic
    shop-r1 eval --live --policy scripted --episodes 200 --out runs/live-scripted   # the ceiling

Each visit is one shopper (seeds `seed`, `seed + 1`, ...). Per step, the agent's action is compared with
what the scripted shopper would do in the state the agent reached (exact / type accuracy, type F1, the
Shop-R1 reward); per visit, its outcome (left, added to cart, purchased; whether the purchase fits the
persona) against the scripted shopper's own outcome for the same persona, as Customer-R1's
session-outcome F1. `scripted` follows the shopper itself. Outputs in `--out`: metrics.json,
episodes.jsonl (every step) and report.md.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_env.atomic_io import atomic_write, write_json, write_text
from shop_env.live_shop import OUTCOMES, LiveShopEnv
from shop_env.metrics import evaluate, percent
from shop_env.response_format import format_response

from agents.make_policy import make_policy
from agents.policies import Policy, PolicyOutput

SCRIPTED = "scripted"
"""The policy that does what the live shop's scripted shopper would: the ceiling of every per-step metric."""


class ScriptedShopperPolicy:
    """Answers with the scripted shopper's own choice in each env's current state."""

    uses_last_action_error = False

    def __init__(self, envs: Sequence[LiveShopEnv]):
        self.envs = envs

    def act(self, observations: list[dict]) -> list[PolicyOutput]:
        by_id = {env.session_id: env for env in self.envs}
        return [PolicyOutput.from_text(format_response("As the shopper would.", by_id[o["session_id"]].reference_action()))
                for o in observations]


@dataclass(frozen=True)
class LiveEvalConfig:
    policy: str = "heuristic"
    """scripted, heuristic, random, terminate, or any LLM `--policy` name."""
    episodes: int = 100
    """Visits to play (one shopper each)."""
    seed: int = 0
    """The first visit's shopper seed; the others follow."""
    out: Path = Path("runs/live")
    context: str = "latest"
    """The observation's context mode (the live shop's prompts: latest step, as the shipped policies)."""
    batch_size: int = 8
    """Visits advanced together (one observation each per policy call)."""

    def __post_init__(self):
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def macro_f1(predicted: Sequence[str], gold: Sequence[str], labels: Sequence[str]) -> float:
    """Macro F1 over `labels` present in `gold` (a label never predicted scores 0, as scikit-learn's zero_division=0)."""
    scores = []
    for label in labels:
        if label not in gold:
            continue
        hits = sum(1 for p, g in zip(predicted, gold, strict=True) if p == g == label)
        said, real = sum(1 for p in predicted if p == label), sum(1 for g in gold if g == label)
        precision, recall = (hits / said if said else 0.0), hits / real
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def run_live_eval(config: LiveEvalConfig, policy: Policy | None = None, **generation_kwargs: Any) -> dict[str, Any]:
    """Play `config.episodes` visits with the policy; write metrics.json, episodes.jsonl, report.md."""
    envs = [LiveShopEnv(context=config.context) for _ in range(min(config.batch_size, config.episodes))]
    if policy is None:
        # The policy's prompts use the env's context mode, whatever the generation settings say.
        policy = (ScriptedShopperPolicy(envs) if config.policy == SCRIPTED
                  else make_policy(config.policy, **{**generation_kwargs, "context": config.context}))
    steps: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    queue = list(range(config.seed, config.seed + config.episodes))[::-1]
    active: list[tuple[LiveShopEnv, dict]] = []
    idle = list(envs)
    while queue or active:
        while idle and queue:
            env = idle.pop()
            observation, _ = env.reset(seed=queue.pop())
            active.append((env, observation))
        outputs = policy.act([observation for _, observation in active])
        still = []
        for (env, observation), output in zip(active, outputs, strict=True):
            observation, _, terminated, truncated, info = env.step(output.text)
            steps.append({
                "visit": env.session_id, "step": info["step_index"], "page_kind": info["page_kind"],
                "text": output.text, "action": info["predicted_action"].to_dict() if info["predicted_action"] else None,
                "reference": info["reference_action"].to_dict(), "parse_error": info["parse_error"],
                "reward": info["reward"].total,  # the step's Shop-R1 reward, without the outcome reward
            })
            if terminated or truncated:
                visits.append({"visit": env.session_id, "steps": info["step_index"] + 1, "truncated": truncated,
                               **{key: info[key] for key in ("outcome", "purchase_fits", "shopper_outcome", "shopper_steps", "outcome_reward")}})
                idle.append(env)
            else:
                still.append((env, observation))
        active = still
    metrics = summarize_live(steps, visits)
    metrics["run"] = {"policy": config.policy, "episodes": config.episodes, "seed": config.seed, "context": config.context}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "episodes.jsonl") as handle:
        for record in steps:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    write_json(out / "metrics.json", metrics)
    write_text(out / "report.md", live_report(metrics, label=config.policy))
    return metrics


def summarize_live(steps: list[dict[str, Any]], visits: list[dict[str, Any]]) -> dict[str, Any]:
    per_step = evaluate([s["action"] for s in steps], [s["reference"] for s in steps])
    agent, shopper = [v["outcome"] for v in visits], [v["shopper_outcome"] for v in visits]
    return {
        "n_visits": len(visits),
        "n_steps": len(steps),
        "step": {key: per_step[key] for key in ("exact_acc", "type_acc", "type_macro_f1")},
        "format_ok": 1 - per_step["counts"]["invalid"] / len(steps),
        "mean_step_reward": sum(s["reward"] for s in steps) / len(steps),
        "mean_visit_length": len(steps) / len(visits),
        "outcomes": {outcome: agent.count(outcome) / len(visits) for outcome in OUTCOMES},
        "shopper_outcomes": {outcome: shopper.count(outcome) / len(visits) for outcome in OUTCOMES},
        "outcome_agreement": sum(a == s for a, s in zip(agent, shopper)) / len(visits),
        "outcome_macro_f1": macro_f1(agent, shopper, OUTCOMES),
        "fitting_purchases": sum(v["purchase_fits"] for v in visits) / len(visits),
        "truncated_visits": sum(v["truncated"] for v in visits),
        "outcome_confusion": {s: dict(Counter(a for a, g in zip(agent, shopper) if g == s)) for s in OUTCOMES},
    }


def live_report(metrics: dict[str, Any], *, label: str) -> str:
    step, outcomes, shopper = metrics["step"], metrics["outcomes"], metrics["shopper_outcomes"]
    lines = [
        f"# Live shop: {label}",
        "",
        f"{metrics['n_visits']} visits, {metrics['n_steps']} steps (mean {metrics['mean_visit_length']:.1f} per visit; "
        f"{metrics['truncated_visits']} cut at the step limit).",
        "",
        "## Per step, against the scripted shopper's choice in the same state",
        "",
        "| Exact Action Acc. | Action Type Acc. | Action Type F1 | Format OK | Mean step reward |",
        "|---:|---:|---:|---:|---:|",
        f"| {percent(step['exact_acc'])} | {percent(step['type_acc'])} | {percent(step['type_macro_f1'])} "
        f"| {percent(metrics['format_ok'])} | {metrics['mean_step_reward']:.4g} |",
        "",
        "## Session outcomes, against the scripted shopper with the same persona",
        "",
        "| | " + " | ".join(OUTCOMES) + " | fitting purchase |",
        "|---|" + "---:|" * (len(OUTCOMES) + 1),
        f"| {label} | " + " | ".join(percent(outcomes[o]) for o in OUTCOMES) + f" | {percent(metrics['fitting_purchases'])} |",
        "| scripted shopper | " + " | ".join(percent(shopper[o]) for o in OUTCOMES) + " | - |",
        "",
        f"Outcome agreement {percent(metrics['outcome_agreement'])}; session-outcome macro F1 "
        f"{percent(metrics['outcome_macro_f1'])} (per-visit outcome against the shopper's, over the outcomes the shopper reached).",
    ]
    return "\n".join(lines) + "\n"


def replay_live(policy_name: str, *, seed: int = 0, console: Any = None, **generation_kwargs: Any) -> dict[str, Any]:
    """`shop-r1 replay --live`: one visit, step by step: the page, the agent's action, the shopper's, the reward."""
    from rich.console import Console

    from shop_env.replay import shown
    from shop_env.simplify_html import page_title

    console = console or Console()
    env = LiveShopEnv(context="latest")
    policy = (ScriptedShopperPolicy([env]) if policy_name == SCRIPTED
              else make_policy(policy_name, **{**generation_kwargs, "context": env.context}))
    observation, _ = env.reset(seed=seed)
    console.rule(f"live visit {env.session_id} · policy {shown(policy_name)}")
    console.print(f"[bold]persona:[/] {shown(observation['persona'])}")
    done, total = False, 0.0
    while not done:
        reference = env.reference_action()
        output = policy.act([observation])[0]
        title = page_title(observation["page"]) or "(untitled page)"
        observation, reward, terminated, truncated, info = env.step(output.text)
        done, total = terminated or truncated, total + reward
        predicted = info["predicted_action"]
        console.print(f"\n[bold cyan]step {info['step_index'] + 1}[/] · {shown(title)}")
        console.print(f"  [bold]agent:  [/] {shown(predicted) if predicted else '[red]invalid[/]: ' + shown(info['parse_error'])}")
        console.print(f"  [bold]shopper:[/] {shown(reference)}")
        if observation["last_action_error"]:
            console.print(f"  [yellow]{shown(observation['last_action_error'])}[/]")
        console.print(f"  [bold]reward:[/] {reward:.4g}")
    console.print(f"\n[bold]outcome:[/] {info['outcome']} (fits the persona: {info['purchase_fits']}); "
                  f"the scripted shopper: {info['shopper_outcome']}; total reward {total:.4g}")
    return {"total": total, **{key: info[key] for key in ("outcome", "purchase_fits", "shopper_outcome")}}
