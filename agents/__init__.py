"""The LLM shopper: prompts, token-budgeted context, model loading, policies and evaluation.

Public names load lazily, so `import agents` does not import torch or transformers until a name
that needs them is used (`HFPolicy`, `load_model_and_tokenizer`, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shop_env.lazy_exports import lazy_getattr

_EXPORTS = {
    "SYSTEM_PROMPT": "agents.prompts",
    "build_messages": "agents.prompts",
    "BuiltPrompt": "agents.context_builder",
    "ContextBudgetError": "agents.context_builder",
    "Dropped": "agents.context_builder",
    "build_prompt": "agents.context_builder",
    "ModelNotFoundError": "agents.models",
    "load_model_and_tokenizer": "agents.models",
    "load_tokenizer": "agents.models",
    "resolve_model": "agents.models",
    "Policy": "agents.policies",
    "PolicyOutput": "agents.policies",
    "OraclePolicy": "agents.policies",
    "TerminatePolicy": "agents.policies",
    "RandomValidPolicy": "agents.policies",
    "HeuristicPolicy": "agents.policies",
    "make_policy": "agents.make_policy",
    "GenerationSettings": "agents.hf_policy",
    "HFPolicy": "agents.hf_policy",
    "VLLMPolicy": "agents.vllm_policy",
    "EvalConfig": "agents.evaluate",
    "evaluate_policy": "agents.evaluate",
    "run_eval": "agents.evaluate",
}
__all__ = list(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from agents.context_builder import BuiltPrompt, ContextBudgetError, Dropped, build_prompt
    from agents.evaluate import EvalConfig, evaluate_policy, run_eval
    from agents.hf_policy import GenerationSettings, HFPolicy
    from agents.make_policy import make_policy
    from agents.models import ModelNotFoundError, load_model_and_tokenizer, load_tokenizer, resolve_model
    from agents.policies import (
        HeuristicPolicy,
        OraclePolicy,
        Policy,
        PolicyOutput,
        RandomValidPolicy,
        TerminatePolicy,
    )
    from agents.prompts import SYSTEM_PROMPT, build_messages
    from agents.vllm_policy import VLLMPolicy
