"""`OpenAIPolicy`: a model behind any OpenAI-compatible chat-completions server as a shopper policy.

    shop-r1 eval --policy openai:gpt-4.1 --out runs/gpt-4.1                      # OPENAI_API_KEY set
    shop-r1 eval --policy openai:llama-3.3-70b --base-url http://127.0.0.1:8080/v1 --out runs/llama

This is how the paper's and OPeRA's API baselines (GPT-4.1, Claude through a compatible gateway,
DeepSeek-R1, Llama on vLLM / llama.cpp / `transformers serve`) are scored against recorded sessions.
The prompts are the ones `HFPolicy` builds (same system prompt, context builder and token budget);
the budget is counted with a local tokenizer (`tokenizer`, the embedded SmolLM2's by default, which
counts more tokens than the larger vocabularies of API models, so a prompt that fits here fits there),
and each output carries the server's own token usage.

- The key comes from `OPENAI_API_KEY` and goes only into the request header: never into a file or a
  log. A server on another `base_url` without a key gets a placeholder (local servers ignore it).
- Up to `max_concurrency` requests are in flight at once.
- Transient failures (connection errors, timeouts, 408, 409, 429, 5xx) are retried by the openai client
  with exponential backoff and the server's Retry-After, up to `max_retries` times; a 400 (say, a prompt
  over the model's window) answers that step with the error (it scores 0 and is counted); a bad key,
  an unknown model or retries that run out stop the run (`shop-r1 eval --resume` then continues it
  without asking any answered step again).
- Self-certainty needs the full next-token distribution, which chat-completions servers do not return
  (at most 20 top log-probs): it is absent for these policies, and the report says so.
- `constrained=True` sends the response format's JSON Schema (with `name` restricted to the page's
  elements) as `response_format`, for servers that support structured outputs.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents.context_builder import BuiltPrompt
from agents.hf_policy import GenerationSettings, prompts_within_budget
from agents.models import EMBEDDED_MODEL, load_tokenizer
from agents.policies import PolicyOutput
from shop_env.response_format import page_response_schema

API_SETTINGS = frozenset({"temperature", "top_p", "greedy", "max_new_tokens", "context_window", "context", "seed"})
"""The `GenerationSettings` an API policy uses (the rest choose how a local model decodes)."""


class OpenAIPolicy:
    """Chat completions from an OpenAI-compatible server (see the module docstring)."""

    uses_last_action_error = False
    """Its prompts leave the env's feedback out (agents/prompts.py), so evaluation may batch steps ahead."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        tokenizer: Any = EMBEDDED_MODEL,
        max_concurrency: int = 4,
        max_retries: int = 5,
        timeout: float = 120.0,
        constrained: bool = False,
        http_client: Any = None,
        **settings: Any,
    ):
        from openai import OpenAI

        unknown = set(settings) - API_SETTINGS
        if unknown:
            raise TypeError(f"unknown settings for an API policy {sorted(unknown)}; expected some of {sorted(API_SETTINGS)}")
        if not model:
            raise ValueError("name the server's model: --policy openai:MODEL")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        key = os.environ.get("OPENAI_API_KEY")
        if not key and base_url is None:
            raise ValueError("the OpenAI API needs a key: set OPENAI_API_KEY (or pass --base-url for another server)")
        self.settings = GenerationSettings(**settings)
        self.name = f"openai:{model}"
        self.model = model
        self.base_url = base_url
        self.constrained = constrained
        self.max_concurrency = max_concurrency
        self.tokenizer = load_tokenizer(tokenizer) if isinstance(tokenizer, str | os.PathLike) else tokenizer
        self.client = OpenAI(api_key=key or "no-key", base_url=base_url, max_retries=max_retries, timeout=timeout,
                             http_client=http_client)
        self._requests_made = 0

    def with_settings(self, **changes: Any) -> OpenAIPolicy:
        """The same client with other sampling settings (e.g. a temperature sweep)."""
        tempered = dataclasses.replace(self.settings, **changes)
        twin = object.__new__(OpenAIPolicy)
        twin.__dict__.update(self.__dict__, settings=tempered)
        return twin

    def act(self, observations: list[dict]) -> list[PolicyOutput]:
        prompts, outputs = prompts_within_budget(observations, self.tokenizer, self.settings.budget)
        seeds = {index: self.settings.seed + self._requests_made + rank for rank, index in enumerate(sorted(prompts))}
        self._requests_made += len(prompts)
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            answers = pool.map(lambda i: self._ask(prompts[i], observations[i], seeds[i]), sorted(prompts))
            for index, answer in zip(sorted(prompts), answers, strict=True):
                outputs[index] = answer
        return outputs  # type: ignore[return-value]

    def _ask(self, prompt: BuiltPrompt, observation: dict, seed: int) -> PolicyOutput:
        import openai

        request: dict[str, Any] = {
            "model": self.model,
            "messages": prompt.messages,
            "max_tokens": self.settings.max_new_tokens,
            "temperature": 0.0 if self.settings.greedy else self.settings.temperature,
            "seed": seed,
        }
        if self.settings.top_p < 1:
            request["top_p"] = self.settings.top_p
        if self.constrained:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "shop_r1_response", "schema": page_response_schema(observation["page"]), "strict": True},
            }
        try:
            completion = self.client.chat.completions.create(**request)
        except openai.BadRequestError as error:
            if self.constrained and "response_format" in str(error):
                raise ValueError(f"{self.base_url or 'the API'} does not take response_format (structured outputs): "
                                 f"run without --constrained ({error})") from error
            return PolicyOutput(text="", action=None, error=f"the server refused the request: {error}")
        text = (completion.choices[0].message.content or "") if completion.choices else ""
        usage = completion.usage
        prompt_tokens = usage.prompt_tokens if usage else None
        completion_tokens = usage.completion_tokens if usage else None
        return PolicyOutput.from_text(text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                      dropped=prompt.dropped)
