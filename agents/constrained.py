"""Constrained decoding: responses forced into the format's JSON Schema, `name` one of the page's elements.

Small models rarely write the response format unaided (zero-shot SmolLM2-135M: no response parses),
which hides whatever else they know about shopping. With `--constrained` each decode step may only
pick tokens that keep the response a prefix of a valid one: the schema is `page_response_schema`
(shop_env/response_format.py): the names of the current page's interactive elements, compiled by
llguidance (a maintained grammar engine, also one of vLLM's structured-output backends) into a token
mask per step. Self-certainty is read from the model's own logits before the mask is applied, so the
rationale is scored on the distribution the model had, not the one the grammar left.

    grammar = ResponseGrammar(tokenizer, vocab_size=model.config.vocab_size, stop_ids={2})
    matchers = [grammar.matcher(observation) for observation in observations]
    decode(model, rows, sampling, constraints=matchers)     # agents/decoding.py
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import copy
import json

import llguidance
import llguidance.torch
import torch
from transformers import LogitsProcessor

from shop_env.response_format import page_response_schema

JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
"""The JSON layout of `format_response` (json.dumps' separators), which SFT teaches, and no other
whitespace: the format parses either way, and a model allowed free whitespace can spend its whole
token budget on it."""


class ResponseGrammar:
    """Builds one llguidance matcher per observation for a tokenizer (built once: ~1 s per tokenizer)."""

    def __init__(self, tokenizer: Any, *, vocab_size: int, stop_ids: Iterable[int]):
        self.vocab_size = vocab_size
        self.tokenizer = llguidance.LLTokenizer(_byte_level_json(tokenizer), n_vocab=vocab_size, eos_token=sorted(stop_ids))

    def matcher(self, observation: Mapping[str, Any]) -> llguidance.LLMatcher:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(page_response_schema(observation["page"]), defaults=JSON_OPTIONS)
        matcher = llguidance.LLMatcher(self.tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise ValueError(f"the response grammar of session {observation.get('session_id')!r} step "
                             f"{observation.get('step_index')} does not compile: {matcher.get_error()}")
        return matcher


BIT_POSITIONS = torch.arange(32, dtype=torch.int32)


def _byte_level_json(tokenizer: Any) -> str:
    """The tokenizer's JSON as llguidance reads it, which learns each token's bytes from the decoder.

    transformers' GGUF conversion (the embedded SmolLM2) writes the decoder as a Sequence of ByteFallback,
    Fuse, Replace and ByteLevel, which llguidance takes for a non-byte-level vocabulary (it then sees
    'Ġ' where a space is); a byte-level BPE's decoder is its ByteLevel step, so that one is given alone.
    """
    backend = copy.copy(tokenizer.backend_tokenizer)
    backend.no_padding()
    backend.no_truncation()
    data = json.loads(backend.to_str())
    decoder = data.get("decoder") or {}
    if decoder.get("type") == "Sequence":
        byte_level = [step for step in decoder.get("decoders", []) if step.get("type") == "ByteLevel"]
        if byte_level:
            data["decoder"] = byte_level[0]
    return json.dumps(data)


class MaskedRows:
    """The matchers of a decoding batch (None for an unconstrained row) and their shared token bitmask."""

    def __init__(self, matchers: Sequence[llguidance.LLMatcher | None], vocab_size: int):
        self.matchers = list(matchers)
        self.bitmask = llguidance.torch.allocate_token_bitmask(len(self.matchers), vocab_size)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """`logits` (B, V) with every token a row's grammar forbids at -inf (a new tensor)."""
        # A matcher whose response is complete (stopped) masks all but the end-of-turn tokens: it stays in.
        constrained = [row for row, matcher in enumerate(self.matchers) if matcher is not None]
        if not constrained:
            return logits
        for row in constrained:
            llguidance.torch.fill_next_token_bitmask(self.matchers[row], self.bitmask, row)
        # The bits unpacked in plain torch: llguidance's own kernel is torch.compile'd, which on a CPU means
        # a C++ compiler and seconds of compiling on first use, for a mask over one row of logits.
        rows = torch.tensor(constrained)
        words = self.bitmask[rows]  # (R, ceil(V / 32)) int32, bit j of word w allows token 32 w + j
        allowed = ((words[:, :, None] >> BIT_POSITIONS) & 1).bool().reshape(len(constrained), -1)[:, : logits.shape[-1]]
        masked = logits.clone()
        masked[rows.to(logits.device)] = logits[rows.to(logits.device)].masked_fill(~allowed.to(logits.device), float("-inf"))
        return masked

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only these rows, in this order (`decode` drops rows that have ended their turn)."""
        self.matchers = [self.matchers[row] for row in rows]
        self.bitmask = self.bitmask[list(rows)]

    def advance(self, chosen: Sequence[int], unfinished: Sequence[bool]) -> None:
        """Feed each unfinished row's chosen token to its matcher."""
        for matcher, token, going in zip(self.matchers, chosen, unfinished, strict=True):
            if matcher is not None and going and not matcher.is_stopped():
                matcher.consume_token(int(token))


class GrammarLogitsProcessor(LogitsProcessor):
    """The same masks for transformers' `generate`: each call first feeds the rows' previous tokens."""

    def __init__(self, matchers: Sequence[llguidance.LLMatcher | None], vocab_size: int):
        self.rows = MaskedRows(matchers, vocab_size)
        self.started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.started:
            self.rows.advance(input_ids[:, -1].tolist(), [True] * input_ids.shape[0])
        self.started = True
        return self.rows.mask(scores)
