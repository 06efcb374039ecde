"""What `--policy` names: a baseline, the embedded model, a shipped trained policy, an HF id or a path.

    make_policy("heuristic"); make_policy("smollm2", temperature=0.6); make_policy("runs/sft/model")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shop_env.session import Session

from agents.policies import BASELINES, HeuristicPolicy, OraclePolicy, Policy, RandomValidPolicy, TerminatePolicy

__all__ = ["BASELINES", "make_policy"]


def make_policy(name_or_path: str, *, sessions: Sequence[Session] | None = None, **generation_kwargs: Any) -> Policy:
    """A policy by name: a baseline (oracle, terminate, random, heuristic) or an LLM.

    LLM names are `smollm2` (the embedded model), `tiny-random`, an HF id or a local path; an
    optional `backend="vllm"` picks vLLM over transformers. `generation_kwargs` are
    `agents.hf_policy.GenerationSettings` fields (temperature, top_p, greedy, max_new_tokens,
    context_window, context, seed, batch_size, with_self_certainty). Baselines use only `seed` (random)
    and ignore the others, so one command line can switch between any policy.
    """
    if name_or_path == "oracle":
        if sessions is None:
            raise ValueError("the oracle policy needs the sessions being replayed: make_policy('oracle', sessions=...)")
        return OraclePolicy(sessions)
    if name_or_path == "terminate":
        return TerminatePolicy()
    if name_or_path == "random":
        return RandomValidPolicy(seed=int(generation_kwargs.get("seed", 0)))
    if name_or_path == "heuristic":
        return HeuristicPolicy()
    backend = generation_kwargs.pop("backend", "hf")
    if backend == "vllm":
        from agents.vllm_policy import VLLMPolicy

        return VLLMPolicy(name_or_path, **generation_kwargs)
    if backend != "hf":
        raise ValueError(f"backend must be 'hf' or 'vllm', got {backend!r}")
    from agents.hf_policy import HFPolicy

    return HFPolicy(name_or_path, **generation_kwargs)
