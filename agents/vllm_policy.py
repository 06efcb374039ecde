"""`VLLMPolicy`: the same policy interface on vLLM, for GPU evaluation of large models.

vLLM is an optional GPU-only dependency (`pip install vllm`); importing this module works without it,
constructing a `VLLMPolicy` does not. Prompts are built exactly as `HFPolicy` builds them (same
context builder, same token budget), so scores from the two backends compare. vLLM returns sampled
tokens' log-probs, not full next-token logits, so self-certainty is not available here: score the
responses with `HFPolicy(with_self_certainty=True)` or let the GRPO trainer compute it.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any

from agents.hf_policy import SETTING_NAMES, GenerationSettings, prompts_within_budget
from agents.models import EMBEDDED_MODEL, is_adapter_dir, load_tokenizer, resolve_model
from agents.policies import PolicyOutput
from shop_env.response_format import page_response_schema

VLLM_INSTALL = "pip install vllm"


class VLLMPolicy:
    """A model served by an in-process vLLM engine; `act` generates a whole batch at once."""

    uses_last_action_error = False
    """Its prompts leave the env's feedback out (agents/prompts.py), so evaluation may batch steps ahead."""

    def __init__(self, model: str | os.PathLike = EMBEDDED_MODEL, **settings: Any):
        unknown = set(settings) - SETTING_NAMES
        if unknown:
            raise TypeError(f"unknown generation settings {sorted(unknown)}; expected some of {sorted(SETTING_NAMES)}")
        self.settings = GenerationSettings(**settings)
        if self.settings.with_self_certainty:
            raise ValueError(
                "the vLLM backend cannot compute self-certainty (it needs the full next-token logits); "
                "use HFPolicy(with_self_certainty=True) instead"
            )
        try:
            import vllm
        except ImportError as err:
            raise ImportError(
                f"the vLLM backend needs the optional package vllm (GPU only): `{VLLM_INSTALL}`; "
                "on a CPU use the default transformers backend"
            ) from err
        self._vllm = vllm
        path = resolve_model(model)
        if is_adapter_dir(path):
            raise ValueError(f"{path} is a LoRA adapter; the vLLM backend loads full models only: use the hf backend, which merges it")
        self.name = str(model)
        self.tokenizer = load_tokenizer(path)
        self.engine = vllm.LLM(model=str(path), seed=self.settings.seed, max_model_len=self.settings.context_window)

    def with_settings(self, **changes: Any) -> VLLMPolicy:
        """The same engine with other sampling settings (temperature, top_p, greedy, max_new_tokens, seed)."""
        fixed = {"context_window", "with_self_certainty"} & set(changes)
        if fixed:
            raise ValueError(f"{sorted(fixed)} cannot change on a running vLLM engine; build a new VLLMPolicy")
        tempered = copy.copy(self)
        tempered.settings = dataclasses.replace(self.settings, **changes)
        return tempered

    def _sampling(self, observation: dict) -> Any:
        """One prompt's sampling parameters; under `constrained`, vLLM's structured outputs force the
        response into the page's response schema, as compact JSON (vLLM takes no separators, so unlike
        agents/constrained.py it cannot keep `format_response`'s ", " and ": ")."""
        structured = None
        if self.settings.constrained:
            from vllm.sampling_params import StructuredOutputsParams

            structured = StructuredOutputsParams(json=page_response_schema(observation["page"]), disable_any_whitespace=True)
        return self._vllm.SamplingParams(
            temperature=0.0 if self.settings.greedy else self.settings.temperature,
            top_p=self.settings.top_p,
            max_tokens=self.settings.max_new_tokens,
            seed=self.settings.seed,
            structured_outputs=structured,
        )

    def act(self, observations: list[dict]) -> list[PolicyOutput]:
        fitting, outputs = prompts_within_budget(observations, self.tokenizer, self.settings.budget)
        indices = sorted(fitting)
        prompts = [fitting[index] for index in indices]
        sampling = [self._sampling(observations[index]) for index in indices]
        # Token ids, not strings: vLLM would add a BOS of its own to a string prompt the template already starts.
        token_prompts = [{"prompt_token_ids": self.tokenizer(p.text, add_special_tokens=False)["input_ids"]} for p in prompts]
        results = self.engine.generate(token_prompts, sampling, use_tqdm=False)
        for index, prompt, result in zip(indices, prompts, results, strict=True):
            outputs[index] = PolicyOutput.from_text(
                result.outputs[0].text,
                prompt_tokens=prompt.n_tokens,
                completion_tokens=len(result.outputs[0].token_ids),
                dropped=prompt.dropped,
            )
        return outputs  # type: ignore[return-value]
