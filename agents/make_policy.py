"""What `--policy` names: a baseline, the embedded model, a shipped trained policy, an HF id, a path,
or a model on an OpenAI-compatible server (`openai:MODEL`).

    make_policy("heuristic"); make_policy("smollm2", temperature=0.6); make_policy("runs/sft/model")
    make_policy("openai:gpt-4.1"); make_policy("openai:my-model", base_url="http://127.0.0.1:8080/v1")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shop_env.session import Session

from agents.policies import BASELINES, HeuristicPolicy, OraclePolicy, Policy, RandomValidPolicy, TerminatePolicy

API_PREFIX = "openai:"
"""`--policy openai:MODEL` names a model on an OpenAI-compatible server (agents/openai_policy.py)."""

__all__ = ["API_PREFIX", "BASELINES", "make_policy"]


def make_policy(name_or_path: str, *, sessions: Sequence[Session] | None = None, **generation_kwargs: Any) -> Policy:
    """A policy by name: a baseline (oracle, terminate, random, heuristic) or an LLM.

    LLM names are `smollm2` (the embedded model), `tiny-random`, an HF id or a local path; an
    optional `backend="vllm"` picks vLLM over transformers. `openai:MODEL` is an `OpenAIPolicy`
    (its own options, such as `base_url`, pass through; the local-decoding settings are dropped). `generation_kwargs` are
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
    if name_or_path.startswith(API_PREFIX):
        from agents.openai_policy import OpenAIPolicy

        local_only = {"backend", "batch_size", "decoder", "weights", "with_self_certainty"}
        kwargs = {key: value for key, value in generation_kwargs.items() if key not in local_only}
        return OpenAIPolicy(name_or_path[len(API_PREFIX):], **kwargs)
    backend = generation_kwargs.pop("backend", "hf")
    if backend == "vllm":
        from agents.vllm_policy import VLLMPolicy

        return VLLMPolicy(name_or_path, **generation_kwargs)
    if backend != "hf":
        raise ValueError(f"backend must be 'hf' or 'vllm', got {backend!r}")
    from agents.hf_policy import HFPolicy

    return HFPolicy(name_or_path, **generation_kwargs)
