"""Self-certainty of the rationale (paper Eq. 3): how far the policy's next-token distributions sit
from uniform while it writes its rationale.

    s = (1/N) sum over the N rationale tokens i of KL(U || p_i)
    KL(U || p) = sum_j (1/V) log((1/V) / p_j) = logsumexp(z) - mean(z) - log V     for logits z

Why KL(U || p) and not the paper's printed Eq. 3: the printed sum, (1/(N V)) sum_i sum_j p_ij log(p_ij / U),
is KL(p || U) / V. With V ~ 150k and alpha = 0.005 that term adds under 1e-6 to a reward of order 1,
yet the paper's Figure 1 shows a rationale reward of +0.13, which is what KL(U || p) ~ 26 nats x 0.005
gives. The papers cited for self-certainty (Kang et al. 2025; Zhao et al. 2025) define it as
KL(U || p). So this module computes KL(U || p) (docs/contract.md, the reward).

The logits must be the policy's full next-token logits at the rationale positions (a transformers
forward pass, not the sampled token's log-prob), scaled by the rollout temperature, and aligned so
that `logits[:, t]` is the distribution that produced token t (the shift TRL and verl already apply
to completion logits). The masks come from `rationale_token_mask`, which marks the tokens of the
rationale's string value only, not the JSON keys or the action.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

import torch

from shop_env.response_format import RATIONALE_KEY, json_body_span, parse_response

CHUNK_ELEMENTS = 1 << 25
"""Logit entries upcast at once (128 MiB in float32): a 32k-token rollout over a 150k vocabulary
would otherwise need ~20 GB for one float32 copy."""

_WHITESPACE = re.compile(r"[ \t\n\r]*")


@torch.no_grad()
def self_certainty(
    logits: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Mean KL(U || softmax(logits / temperature)) over each sequence's masked positions.

    Args:
        logits: (B, T, V) next-token logits, any float dtype (bf16 is upcast to float32, float64 kept).
        mask: (B, T) bool or 0/1; True marks the rationale positions to average over.
        temperature: the rollout's sampling temperature (> 0), so the reward sees the sampled policy.

    Returns:
        (B,) self-certainty in nats, float32 (float64 for float64 logits). A sequence with no masked
        position gets 0: no rationale, no confidence to reward. Only the masked positions are upcast,
        in chunks of `CHUNK_ELEMENTS`. KL is never negative; rounding can give -1e-7, clamped to 0.
        Logits that overflow (inf or NaN, e.g. from a diverged model) give a non-finite s, which the
        reward refuses with its reason (`shop_env.rewards.MAX_SELF_CERTAINTY`) rather than paying it.
        It is a reward, not a loss, so no gradient flows.

    >>> logits = torch.zeros(1, 3, 8)  # uniform: no certainty
    >>> self_certainty(logits, torch.tensor([[True, True, False]]))
    tensor([0.])
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (batch, tokens, vocab); got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be a float tensor; got {logits.dtype}")
    if tuple(mask.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match logits (batch, tokens) "
            f"{tuple(logits.shape[:2])}"
        )
    if not (isinstance(temperature, int | float) and 0 < temperature < math.inf and 0 < 1 / temperature < math.inf):
        raise ValueError(f"temperature must be a finite number > 0 whose inverse is finite; got {str(temperature)[:40]}")
    batch, _, vocab = logits.shape
    compute_dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    mask = mask.to(device=logits.device, dtype=torch.bool)
    positions = mask.nonzero()  # (N, 2): (sequence, token) of each rationale position
    totals = torch.zeros(batch, dtype=torch.float64, device=logits.device)
    for chunk in positions.split(max(1, CHUNK_ELEMENTS // vocab)):
        scaled = logits[chunk[:, 0], chunk[:, 1]].to(compute_dtype) / temperature  # (n, V)
        kl = torch.logsumexp(scaled, dim=-1) - scaled.mean(dim=-1) - math.log(vocab)  # (n,)
        totals.index_add_(0, chunk[:, 0], kl.to(torch.float64))
    counts = mask.sum(dim=1)  # (B,)
    means = torch.where(counts > 0, totals / counts.clamp_min(1), torch.zeros_like(totals))
    return means.clamp_min(0.0).to(compute_dtype)


def rationale_char_span(response_text: str) -> tuple[int, int] | None:
    """Characters of the rationale's string value (between its quotes) in the raw response.

    None when the response fails the format. With duplicate keys the last one counts, as in
    `json.loads`. Offsets index `response_text` itself (code fence and whitespace included).

    >>> text = '{"rationale": "Cheap.", "action": {"type": "terminate"}}'
    >>> start, end = rationale_char_span(text)
    >>> text[start:end]
    'Cheap.'
    """
    if not parse_response(response_text).ok:
        return None
    start, end = json_body_span(response_text)
    found = None
    depth = 0
    expect_key = False
    index = start
    while index < end:
        char = response_text[index]
        if char == '"':
            key, index = json.decoder.scanstring(response_text, index + 1)
            if depth == 1 and expect_key:
                expect_key = False
                value_start = _skip_colon(response_text, index)
                if key == RATIONALE_KEY and response_text.startswith('"', value_start):
                    _, value_end = json.decoder.scanstring(response_text, value_start + 1)
                    found = (value_start + 1, value_end - 1)
                    index = value_end
            continue
        if char in "{[":
            depth += 1
            expect_key = char == "{" and depth == 1
        elif char in "}]":
            depth -= 1
        elif char == "," and depth == 1:
            expect_key = True
        index += 1
    return found


def _skip_colon(text: str, index: int) -> int:
    """Index of the value after a key: past whitespace, the colon, whitespace."""
    index = _WHITESPACE.match(text, index).end() + 1
    return _WHITESPACE.match(text, index).end()


def rationale_token_mask(
    response_text: str, offsets: Sequence[tuple[int, int] | Sequence[int]]
) -> list[bool]:
    """Which tokens overlap the rationale's string value, from a fast tokenizer's offset_mapping.

    All False when the response fails the format (it earns no reward anyway) or the rationale is
    empty. Tokens with empty offsets (special tokens) are never marked.

    >>> text = '{"rationale": "Cheap.", "action": {"type": "terminate"}}'
    >>> rationale_token_mask(text, [(0, 2), (2, 13), (13, 15), (15, 20), (20, 22), (22, 56), (56, 56)])
    [False, False, False, True, True, False, False]
    """
    span = rationale_char_span(response_text)
    if span is None:
        return [False] * len(offsets)
    start, end = span
    return [token_start < end and token_end > start and token_end > token_start
            for token_start, token_end in offsets]


def rationale_mask_for(
    tokenizer, response_text: str, token_ids: Sequence[int] | None = None
) -> list[bool]:
    """The rationale token mask of a response, one entry per token.

    Without `token_ids` the text is re-tokenized (a fast tokenizer's offset_mapping, no special
    tokens). A sampled completion can tokenize differently from its re-encoding, so a trainer should
    pass the sampled `token_ids`: their character offsets then come from decoding growing prefixes
    (special tokens such as EOS decode to nothing and stay unmarked), and `response_text` must be
    `tokenizer.decode(token_ids, skip_special_tokens=True)`.
    """
    if token_ids is None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"{type(tokenizer).__name__} gives no offset_mapping; load a fast tokenizer "
                "(AutoTokenizer.from_pretrained(..., use_fast=True)) or pass token_ids"
            )
        encoded = tokenizer(response_text, add_special_tokens=False, return_offsets_mapping=True)
        return rationale_token_mask(response_text, encoded["offset_mapping"])
    token_ids = list(token_ids)
    decoded = tokenizer.decode(token_ids, skip_special_tokens=True)
    if decoded != response_text:
        raise ValueError(
            "response_text is not tokenizer.decode(token_ids, skip_special_tokens=True): "
            f"{response_text[:60]!r} vs {decoded[:60]!r}"
        )
    offsets = []
    previous = 0
    for count in range(1, len(token_ids) + 1):
        prefix = tokenizer.decode(token_ids[:count], skip_special_tokens=True).rstrip("\ufffd")
        current = max(previous, _common_prefix_length(prefix, decoded))
        offsets.append((previous, current))
        previous = current
    return rationale_token_mask(response_text, offsets)


def rationale_mean(tokenizer, token_ids: Sequence[int], per_position: torch.Tensor) -> float | None:
    """Mean of `per_position` (one self-certainty per generated token, (T,)) over the rationale's tokens.

    None when the response has no rationale tokens to score (it failed the format, or the rationale is empty).
    """
    text = tokenizer.decode(list(token_ids), skip_special_tokens=True)
    mask = torch.as_tensor(rationale_mask_for(tokenizer, text, token_ids), dtype=torch.bool)  # (T,)
    return float(per_position[mask].mean()) if mask.any() else None


def _common_prefix_length(a: str, b: str) -> int:
    """Length of the shared prefix: a byte-level token cut mid-character decodes to U+FFFD."""
    if b.startswith(a):
        return len(a)
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index
