"""The paper's reward-hacking argument in numbers: what fixed policies earn per step under the
default Shop-R1 reward and under the no-DARS ablation (paper section 3 and Table 4).

Policies, each replayed on every step of a gold session (the rationale is a fixed sentence, no
self-certainty, so only format + action count):
- always-terminate: the easy action the no-DARS run collapses to;
- gold: the human's own action (the maximum);
- types right, values unrelated: the right type, a name (and for type_and_submit a text) that shares
  no ROUGE-L token with the human's;
- types right, other element: the right type, the other element of the same page closest to the
  human's by ROUGE-L (and an unrelated text): the realistic near miss, since dotted names share
  their frame (`search_results ... view_product`) and can pass the 0.75 threshold.

Run (repo root):

    .venv/bin/python experiments/reward_hacking.py                  # first test session with every type
    .venv/bin/python experiments/reward_hacking.py --session-id ID --sessions data.jsonl --out result.json
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from statistics import mean

from rich.console import Console
from rich.table import Table

from shop_env.atomic_io import write_json
from shop_env.matching import rouge_l
from shop_env.response_format import format_response
from shop_env.rewards import RewardConfig, score_response
from shop_env.session import ACTION_TYPES, TERMINATE, TYPE_AND_SUBMIT, Action, Session, Step
from shop_env.simplify_html import interactive_elements

RATIONALE = "This is what I would do next on this page."
UNRELATED_NAME = "zzz_unrelated.qqq_element"
UNRELATED_TEXT = "zzz unrelated qqq"

Policy = Callable[[Step], Action]


def always_terminate(step: Step) -> Action:
    return Action(TERMINATE)


def gold(step: Step) -> Action:
    return step.action


def types_right_values_unrelated(step: Step) -> Action:
    return _with_name(step.action, UNRELATED_NAME)


def types_right_other_element(step: Step) -> Action:
    """The page's element most like the human's target by ROUGE-L, other than the target itself
    (first in page order on ties; the unrelated name when the page offers nothing else)."""
    others = [name for name in interactive_elements(step.observation) if name != step.action.name]
    if not others or step.action.type == TERMINATE:
        return _with_name(step.action, UNRELATED_NAME)
    return _with_name(step.action, max(others, key=lambda name: rouge_l(name, step.action.name)))


def _with_name(action: Action, name: str) -> Action:
    if action.type == TERMINATE:
        return action
    text = UNRELATED_TEXT if action.type == TYPE_AND_SUBMIT else None
    return Action(action.type, name=name, text=text)


POLICIES: dict[str, Policy] = {
    "always-terminate": always_terminate,
    "gold": gold,
    "types right, values unrelated": types_right_values_unrelated,
    "types right, other element": types_right_other_element,
}
CONFIGS = {"DARS 1000": RewardConfig(), "no DARS": RewardConfig.ablation("no_dars")}


def mean_rewards(session: Session) -> dict[str, dict[str, float]]:
    """{config: {policy: mean total reward per step}} over the session's steps."""
    return {
        config_name: {
            policy_name: mean(
                score_response(format_response(RATIONALE, policy(step)), step.action, config).total
                for step in session.steps
            )
            for policy_name, policy in POLICIES.items()
        }
        for config_name, config in CONFIGS.items()
    }


def pick_session(sessions: list[Session], session_id: str | None) -> Session:
    """The named session, else the first one in which the human used every action type."""
    if session_id is not None:
        for session in sessions:
            if session.session_id == session_id:
                return session
        raise SystemExit(f"no session {session_id!r}; first ids: {[s.session_id for s in sessions[:5]]}")
    for session in sessions:
        if {action.type for action in session.actions} == set(ACTION_TYPES):
            return session
    return sessions[0]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default=None, help="a file load_sessions reads (default: bundled test split)")
    parser.add_argument("--session-id", default=None, help="session to score (default: first with every type)")
    parser.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = parser.parse_args(argv)

    from shop_env.loaders import bundled_sessions, load_sessions

    sessions = load_sessions(args.sessions) if args.sessions else bundled_sessions("test")
    session = pick_session(sessions, args.session_id)
    one = mean_rewards(session)
    per_session = [mean_rewards(s) for s in sessions]
    every = {
        config_name: {
            policy_name: mean(rewards[config_name][policy_name] for rewards in per_session)
            for policy_name in POLICIES
        }
        for config_name in CONFIGS
    }
    result = {
        "session_id": session.session_id,
        "steps": len(session),
        "action_types": {kind: sum(a.type == kind for a in session.actions) for kind in ACTION_TYPES},
        "mean_total_reward_per_step": one,
        "mean_over_sessions": {"sessions": len(sessions), "mean_total_reward_per_step": every},
    }

    table = Table(title=f"Mean total reward per step, session {session.session_id} ({len(session)} steps: "
                        + ", ".join(f"{n} {k}" for k, n in result["action_types"].items()) + ")")
    table.add_column("policy")
    for config_name in CONFIGS:
        table.add_column(f"{config_name}\nthis session", justify="right")
        table.add_column(f"{config_name}\nall {len(sessions)}", justify="right")
    for policy_name in POLICIES:
        row = [policy_name]
        for config_name in CONFIGS:
            row += [f"{one[config_name][policy_name]:.3f}", f"{every[config_name][policy_name]:.3f}"]
        table.add_row(*row)
    Console().print(table)
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
