"""`HFPolicy`: any transformers causal LM as a shopper policy, batched, on CPU or GPU.

    policy = HFPolicy("smollm2", temperature=0.6, context_window=2048, max_new_tokens=96)
    outputs = policy.act([observation_at(session, 3)])
    outputs[0].text, outputs[0].action

Prompts come from `agents.context_builder.build_prompt` (the training data uses the same call) and are
decoded from `GenerationSettings` alone, so a model's shipped sampling defaults (Qwen's top_k=20 and
repetition penalty, for instance) do not silently change the paper's setting. Two decoders:

- `fast` (the default, `agents.decoding`): each prompt is prefilled on its own, reusing the KV of the
  prefix it shares with the previous prompt of the call (prompts are taken in token order, so the
  instructions and shared history are computed once), then `batch_size` rows decode together over a
  preallocated cache.
- `generate`: transformers' `generate` on left-padded batches, the reference (and the baseline of
  benchmarks/eval_throughput.py).

With `with_self_certainty=True` each output carries the rationale's self-certainty KL(U || p) (paper
Eq. 3), computed from the full next-token logits the model produced while generating, scaled by the
sampling temperature, on the rationale tokens only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import torch

from agents.context_builder import DEFAULT_CONTEXT_WINDOW, BuiltPrompt, ContextBudgetError, PromptBudget
from agents.decoding import DRAWS, Prefilled, Sampling, check_supported, decode, prefill
from agents.models import EMBEDDED_MODEL, load_model_and_tokenizer
from agents.policies import PolicyOutput
from shop_env.self_certainty import rationale_mask_for, rationale_mean, self_certainty

logger = logging.getLogger(__name__)


DECODERS = ("fast", "generate")


@dataclass(frozen=True)
class GenerationSettings:
    """How an LLM policy builds prompts and decodes; defaults follow the paper where it says."""

    temperature: float = 0.6
    """Sampling temperature (paper section 4.1: 0.6). Also scales the logits for self-certainty, so the
    reward sees the distribution that was sampled from."""
    top_p: float = 1.0
    """Nucleus sampling mass; 1.0 keeps the whole distribution (the paper does not truncate)."""
    greedy: bool = False
    """Decode greedily (argmax) instead of sampling: deterministic, for tests and debugging."""
    max_new_tokens: int = 256
    """Most tokens generated per response; a rationale + action is ~40-100 tokens."""
    context_window: int = DEFAULT_CONTEXT_WINDOW
    """Prompt + response budget in tokens (paper: 32k). Clamped to the model's context window; on a
    CPU use ~2048 (a 135M-model forward over 2k tokens takes ~6 s on 2 cores, over 8k ~37 s)."""
    context: str | None = None
    """'whole' or 'latest' to force a context mode; None uses the observation as the env built it."""
    seed: int = 0
    """Seeds sampling: batch k of this policy is sampled with seed + k, so reruns repeat exactly."""
    batch_size: int | None = None
    """Rows decoded together; None picks 8 (the fast decoder, or `generate` on a GPU) or 1 (`generate`
    on a CPU, where its left-padded prefill makes SDPA ~2x slower: benchmarks/generation.py)."""
    decoder: str = "fast"
    """'fast': per-prompt prefill with prefix reuse, batched decode (agents/decoding.py); 'generate':
    transformers' generate on left-padded batches (the reference path, and models fast decoding does not
    support, such as sliding-window caches)."""
    draw: str = "inverse_cdf"
    """How the fast decoder draws a sampled token (`agents.decoding.Sampling.draw`): 'inverse_cdf' (one
    uniform number per row, and ended rows leave the batch) or 'multinomial' (generate's own draws, the
    stream evaluations before fp32-packed used)."""
    with_self_certainty: bool = False
    """Return the rationale's self-certainty (nats) with each output; keeps the generated logits."""
    constrained: bool = False
    """Force each response into the format's JSON Schema with `name` one of the page's elements
    (agents/constrained.py). Self-certainty still scores the model's own, unconstrained distribution."""

    def __post_init__(self):
        if not (self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature}; use greedy=True for argmax decoding")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        _ = self.budget  # validates context, context_window and max_new_tokens
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if self.draw not in DRAWS:
            raise ValueError(f"draw must be one of {', '.join(DRAWS)}, got {self.draw!r}")


    @property
    def budget(self) -> PromptBudget:
        """The prompt budget these settings give (the model's own window may clamp it: `HFPolicy`)."""
        return PromptBudget(self.context, self.context_window, self.max_new_tokens)


SETTING_NAMES = frozenset(field.name for field in fields(GenerationSettings))
BATCH_SIZE = 8
"""Default rows per decoding batch: a decode step streams the weights once for all of them."""


def prompts_within_budget(
    observations: list[dict], tokenizer, budget: PromptBudget
) -> tuple[dict[int, BuiltPrompt], list[PolicyOutput | None]]:
    """Prompts of the observations that fit, by index, and the outputs list with the others answered.

    A step whose instructions + action history alone exceed the budget gets an empty response with the
    reason: it scores 0 and evaluation counts it, instead of one step stopping a whole run.
    """
    outputs: list[PolicyOutput | None] = [None] * len(observations)
    prompts: dict[int, BuiltPrompt] = {}
    for index, observation in enumerate(observations):
        try:
            prompts[index] = budget.build(observation, tokenizer)
        except ContextBudgetError as err:
            outputs[index] = PolicyOutput(text="", action=None, error=str(err))
    return prompts, outputs


class HFPolicy:
    """A transformers causal LM answering observations in batches (see the module docstring)."""

    uses_last_action_error = False
    """Its prompts leave the env's feedback out (agents/prompts.py), so evaluation may batch steps ahead."""

    def __init__(
        self,
        model: str | os.PathLike | Any = EMBEDDED_MODEL,
        tokenizer: Any | None = None,
        *,
        dtype: torch.dtype | None = None,
        weights: str = "fp32",
        **settings: Any,
    ):
        """`model` is a name for `agents.models.resolve_model` or a loaded model (then pass its tokenizer).

        `weights` picks the format a named model is loaded in (`agents.models.WEIGHT_FORMATS`)."""
        unknown = set(settings) - SETTING_NAMES
        if unknown:
            raise TypeError(f"unknown generation settings {sorted(unknown)}; expected some of {sorted(SETTING_NAMES)}")
        self.settings = GenerationSettings(**settings)
        if isinstance(model, (str, os.PathLike)):
            if tokenizer is not None:
                raise ValueError("pass a tokenizer only together with a loaded model, not with a model name")
            self.model, self.tokenizer = load_model_and_tokenizer(model, dtype=dtype, weights=weights)
            self.name = str(model)
        else:
            if tokenizer is None:
                raise ValueError("a loaded model needs its tokenizer: HFPolicy(model, tokenizer)")
            if tokenizer.pad_token_id is None or not tokenizer.chat_template:
                raise ValueError(
                    "the tokenizer needs a pad token and a chat template for batched chat generation; "
                    "pass it through agents.models.prepare_tokenizer first"
                )
            # Used as given (a trainer may share it): left padding is asked for per call, never set on it.
            self.model, self.tokenizer = model, tokenizer
            self.name = getattr(model, "name_or_path", None) or type(model).__name__
        window = getattr(self.model.config, "max_position_embeddings", None)
        if window and window < self.settings.context_window:
            logger.info("%s: token budget %d clamped to the model's context window %d", self.name, self.settings.context_window, window)
            if window <= self.settings.max_new_tokens:
                raise ValueError(f"{self.name}: context window {window} leaves no room for max_new_tokens={self.settings.max_new_tokens}")
        self.budget = PromptBudget(self.settings.context, min(self.settings.context_window, window or self.settings.context_window),
                                   self.settings.max_new_tokens)
        one_at_a_time = self.settings.decoder == "generate" and self.model.device.type == "cpu"
        self.batch_size = self.settings.batch_size or (1 if one_at_a_time else BATCH_SIZE)
        if self.settings.decoder == "fast":
            check_supported(self.model)
        self._stop_ids = self._end_of_turn_ids()
        self._batches_run = 0
        self._grammar = None

    def with_settings(self, **changes: Any) -> HFPolicy:
        """The same model and tokenizer with some settings changed (e.g. a temperature sweep), no reload."""
        return HFPolicy(self.model, self.tokenizer, **{**dataclasses.asdict(self.settings), **changes})

    def _end_of_turn_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        if not ids:
            raise ValueError(f"{self.name}: neither the model nor the tokenizer defines an end-of-sequence token")
        return ids

    def _generation_config(self):
        from transformers import GenerationConfig

        sample = not self.settings.greedy
        return GenerationConfig(
            max_new_tokens=self.settings.max_new_tokens,
            do_sample=sample,
            temperature=self.settings.temperature if sample else None,
            top_p=self.settings.top_p if sample else None,
            top_k=0 if sample else None,  # 0 = off; unset, generate would apply its global default of 50
            eos_token_id=sorted(self._stop_ids),
            pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=self.model.generation_config.bos_token_id,
            return_dict_in_generate=True,
            output_logits=self.settings.with_self_certainty,
        )

    @contextmanager
    def _only_our_settings(self):
        """Hide the model's own generation defaults while generating.

        `generate` fills every option we leave unset from `model.generation_config`, so a shipped
        top_k=20 or repetition_penalty=1.05 (Qwen2.5-Instruct) would silently apply on top of ours.
        """
        from transformers import GenerationConfig

        shipped = self.model.generation_config
        self.model.generation_config = GenerationConfig()
        try:
            yield
        finally:
            self.model.generation_config = shipped

    def build_prompts(self, observations: list[dict]) -> list[BuiltPrompt]:
        return [self.budget.build(observation, self.tokenizer) for observation in observations]

    def act(self, observations: list[dict]) -> list[PolicyOutput]:
        prompts, outputs = prompts_within_budget(observations, self.tokenizer, self.budget)
        if self.settings.decoder == "fast":
            ids = {i: self.tokenizer(prompt.text, add_special_tokens=False)["input_ids"] for i, prompt in prompts.items()}
            order = sorted(ids, key=lambda i: ids[i])  # token order: neighbours share the longest prefixes
        else:
            order = sorted(prompts, key=lambda i: prompts[i].n_tokens)  # similar lengths pad least
        previous = None
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            if self.settings.decoder == "fast":
                rows = []
                for i in chunk:
                    previous = prefill(self.model, ids[i], reuse=previous)
                    rows.append(previous)
                generated = self._decode(rows, [prompts[i] for i in chunk], self._matchers(observations, chunk))
            else:
                generated = self._generate([prompts[i] for i in chunk], self._matchers(observations, chunk))
            for index, output in zip(chunk, generated, strict=True):
                outputs[index] = output  # the caller's order
        return outputs  # type: ignore[return-value]

    @contextmanager
    def _seeded(self):
        """Batch k of this policy samples with seed + k, whatever else uses the global RNG."""
        with torch.random.fork_rng(devices=[] if self.model.device.type == "cpu" else [self.model.device]):
            torch.manual_seed(self.settings.seed + self._batches_run)
            yield
        self._batches_run += 1

    def _matchers(self, observations: list[dict], chunk: list[int]) -> list[Any] | None:
        """One grammar matcher per row under `constrained` (agents/constrained.py), else None."""
        if not self.settings.constrained:
            return None
        if self._grammar is None:
            from agents.constrained import ResponseGrammar

            vocab_size = self.model.get_output_embeddings().out_features
            self._grammar = ResponseGrammar(self.tokenizer, vocab_size=vocab_size, stop_ids=self._stop_ids)
        return [self._grammar.matcher(observations[i]) for i in chunk]

    def _decode(self, rows: list[Prefilled], prompts: list[BuiltPrompt], matchers: list[Any] | None) -> list[PolicyOutput]:
        sampling = Sampling(
            max_new_tokens=self.settings.max_new_tokens,
            stop_ids=frozenset(self._stop_ids),
            pad_id=self.tokenizer.pad_token_id,
            temperature=self.settings.temperature,
            greedy=self.settings.greedy,
            top_p=self.settings.top_p,
            draw=self.settings.draw,
        )
        with self._seeded():
            decoded = decode(self.model, rows, sampling, with_certainty=self.settings.with_self_certainty, constraints=matchers)
        outputs = []
        for prompt, row in zip(prompts, decoded, strict=True):
            text = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
            certainty = None if row.certainty is None else rationale_mean(self.tokenizer, row.token_ids, row.certainty)
            outputs.append(
                PolicyOutput.from_text(
                    text, self_certainty=certainty, prompt_tokens=prompt.n_tokens,
                    completion_tokens=len(row.token_ids), dropped=prompt.dropped,
                )
            )
        return outputs

    @torch.inference_mode()
    def _generate(self, prompts: list[BuiltPrompt], matchers: list[Any] | None) -> list[PolicyOutput]:
        encoded = self.tokenizer(
            [prompt.text for prompt in prompts],
            add_special_tokens=False,
            padding=True,
            padding_side="left",  # generation appends on the right, so every prompt must end in the last column
            return_tensors="pt",
        ).to(self.model.device)
        width = encoded["input_ids"].shape[1]
        processors = None
        if matchers is not None:
            from transformers import LogitsProcessorList

            from agents.constrained import GrammarLogitsProcessor

            processors = LogitsProcessorList([GrammarLogitsProcessor(matchers, self._grammar.vocab_size)])
        with self._seeded(), self._only_our_settings():
            generated = self.model.generate(**encoded, generation_config=self._generation_config(), logits_processor=processors)
        new_tokens = generated.sequences[:, width:]  # (B, T_new), pad after each row's end of turn
        kept = [self._until_end_of_turn(row.tolist()) for row in new_tokens]
        texts = [self.tokenizer.decode(ids, skip_special_tokens=True) for ids in kept]
        certainties: list[float | None] = [None] * len(prompts)
        if self.settings.with_self_certainty:
            certainties = self._self_certainty(torch.stack(generated.logits, dim=1), kept, texts)
        return [
            PolicyOutput.from_text(
                text,
                self_certainty=certainty,
                prompt_tokens=prompt.n_tokens,
                completion_tokens=len(ids),
                dropped=prompt.dropped,
            )
            for prompt, ids, text, certainty in zip(prompts, kept, texts, certainties, strict=True)
        ]

    def _until_end_of_turn(self, ids: list[int]) -> list[int]:
        for position, token in enumerate(ids):
            if token in self._stop_ids:
                return ids[: position + 1]
        return ids

    def _self_certainty(self, logits: torch.Tensor, kept: list[list[int]], texts: list[str]) -> list[float | None]:
        """Self-certainty per row from the generation logits (B, T_new, V): logits[:, t] produced token t.

        None for a response without rationale tokens (it failed the format, or the rationale is empty).
        """
        mask = torch.zeros(logits.shape[:2], dtype=torch.bool)  # (B, T_new)
        for row, (ids, text) in enumerate(zip(kept, texts, strict=True)):
            mask[row, : len(ids)] = torch.tensor(rationale_mask_for(self.tokenizer, text, token_ids=ids), dtype=torch.bool)
        values = self_certainty(logits, mask.to(logits.device), self.settings.temperature)  # (B,)
        return [float(value) if mask[row].any() else None for row, value in enumerate(values.tolist())]
