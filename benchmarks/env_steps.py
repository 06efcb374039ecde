"""Env steps per second with the reward, against a bare `json.loads` + compare loop over the same steps.

Both sides see the same precomputed responses for every step of the bundled test sessions, so the
ratio prices exactly what the env adds to parsing: validation, the hierarchical reward, the next
observation, the info dict. Two policies:

- oracle: the human's own action as the canonical response (`format_response`), the best case for
  the reward (identical strings skip ROUGE-L) and the common case late in training;
- garbage: what an untrained model emits (prose, truncated JSON, unknown types, wrong keys).

The env runs as users make it (`gym.make`, with Gymnasium's default OrderEnforcing and
PassiveEnvChecker). There is no target any more: an env step costs microseconds and a model step
seconds, so the caches and parser shortcuts that once raised this ratio were taken out for simplicity
(experiments/scorer_equivalence.py checked that the rewards did not change). Pinned to one core.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

import gymnasium as gym

from benchmarks import interleaved_rates, median_ratio, pinned_to_one_core
from shop_env import ENV_ID
from shop_env.loaders import bundled_sessions
from shop_env.response_format import format_response
from shop_env.session import Session

def oracle_responses(sessions: Sequence[Session]) -> list[list[str]]:
    return [[format_response(step.rationale or "", step.action) for step in s.steps] for s in sessions]


def garbage_responses(sessions: Sequence[Session], seed: int = 0) -> list[list[str]]:
    """Deterministic junk of the kinds an untrained policy writes, one per step."""
    rng = random.Random(seed)
    kinds = [
        lambda valid: "I think I will click on the product that looks best.",
        lambda valid: valid[: rng.randrange(1, len(valid))],
        lambda valid: valid.replace('"type": "', '"type": "hover_', 1),
        lambda valid: valid.replace('"action"', '"act"', 1),
        lambda valid: "```json\n" + valid + "\n``` and some trailing words",
        lambda valid: "".join(rng.choice("{}[]\":, abcxyz") for _ in range(80)),
    ]
    return [[rng.choice(kinds)(text) for text in texts] for texts in oracle_responses(sessions)]


def env_workload(env: gym.Env, responses: list[list[str]]) -> Callable[[], int]:
    """Replay every session once with the given responses; returns the number of steps."""

    def replay() -> int:
        steps = 0
        for index, texts in enumerate(responses):
            env.reset(options={"index": index})
            for text in texts:
                env.step(text)
            steps += len(texts)
        return steps

    return replay


def bare_workload(sessions: Sequence[Session], responses: list[list[str]]) -> Callable[[], int]:
    """The floor: parse each response with json.loads and compare its action with the human's."""
    pairs = [
        (text, step.action.to_dict())
        for session, texts in zip(sessions, responses, strict=True)
        for step, text in zip(session.steps, texts, strict=True)
    ]

    def loop() -> int:
        hits = 0
        for text, gold in pairs:
            try:
                data = json.loads(text)
            except ValueError:
                continue
            hits += isinstance(data, dict) and data.get("action") == gold
        return len(pairs)

    return loop


def run(quick: bool = False) -> dict:
    sessions = bundled_sessions("test")
    rounds = 10 if quick else 30
    oracle, garbage = oracle_responses(sessions), garbage_responses(sessions)
    env = gym.make(ENV_ID, sessions=sessions)
    with pinned_to_one_core() as core:
        rates = interleaved_rates(  # each env workload next to its baseline, so they pair up
            {
                "oracle": env_workload(env, oracle),
                "bare_oracle": bare_workload(sessions, oracle),
                "garbage": env_workload(env, garbage),
                "bare_garbage": bare_workload(sessions, garbage),
            },
            rounds=rounds,
        )
    best = {name: rate.best for name, rate in rates.items()}
    return {
        "benchmark": "env_steps",
        "ratios": {
            "oracle_vs_bare": median_ratio(rates["oracle"], rates["bare_oracle"]),
            "garbage_vs_bare": median_ratio(rates["garbage"], rates["bare_garbage"]),
        },
        "numbers": {
            "oracle_steps_per_s": round(best["oracle"]),
            "garbage_steps_per_s": round(best["garbage"]),
            "bare_oracle_steps_per_s": round(best["bare_oracle"]),
            "bare_garbage_steps_per_s": round(best["bare_garbage"]),
            "oracle_median_round_steps_per_s": round(rates["oracle"].median),
            "steps_per_round": rates["oracle"].items,
            "sessions": len(sessions),
            "rounds": rounds,
        },
        "pinned_core": core,
        "notes": (
            "gym.make env (Gymnasium's default wrappers), context='whole', default RewardConfig; responses "
            "precomputed so no policy time is counted. Bare loop: json.loads + dict compare of the action. "
            "Ratios: median over rounds of the two rates within a round; steps/s: best round."
        ),
    }
