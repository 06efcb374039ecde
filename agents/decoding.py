"""Fast decoding: every prompt prefilled on its own, unpadded, then a batch decoded together.

transformers' `generate` is the reference, and `decode` samples as it does: the same logits warpers
(temperature, top-k, top-p, min-p) over float32 probabilities, finished rows padded, a stop when every
row has ended its turn; with `Sampling.draw="multinomial"` (the default) also the same draws (one
`torch.multinomial` per step on the global RNG), so a seed gives `generate`'s tokens. What differs is
how the work is laid out, for reasons measured on 2 CPU cores with SmolLM2-135M (benchmarks/):

- A left-padded batch prefill loses SDPA's causal kernel on CPU (about 2x slower). Here each prompt is
  prefilled alone and only the decode steps run as a batch, so batching costs the prefill nothing.
- Prompts share beginnings: the instructions, in whole-session context the earlier pages, and in
  GRPO the G samples of one prompt. `prefill(..., reuse=)` keeps the KV of the longest common prefix
  with an earlier prompt; its new positions then attend in causal chunks (`_sdpa_prefill`), since
  transformers would hand SDPA a full mask and compute the masked half too.
- `DynamicCache` concatenates the whole KV cache again at every decode step (76% of a step at a 1k
  context). Here the batch's cache is allocated once (`PreallocatedLayer`) and a step writes one
  position in place.
- A decode step reads every row's KV cache; the positions all rows' prompts share (the instructions;
  a GRPO group's whole prompt) are kept once outside the rows' caches and attended to by all the rows'
  queries in one call (`_sdpa_decode`), and a KV head's query heads are read as positions of one query,
  so each row's keys are read once (transformers' SDPA would copy every KV head once per query head).
- Rows that ended their turn leave the batch once they are an eighth of it (not with
  `draw="multinomial"`, whose draws would then no longer be `generate`'s).

With `with_certainty=True` each row also gets KL(U || p) of every generated position, computed from
that step's full next-token logits at the sampling temperature (`shop_env.self_certainty`), so no
(batch, tokens, vocab) logits are ever kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import Cache, DynamicLayer
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from shop_env.self_certainty import self_certainty


DRAWS = ("multinomial", "inverse_cdf")

DROP_ENDED_FRACTION = 8
"""`decode` drops the rows that ended their turn once they are 1/8 of the batch (unless it draws with
torch.multinomial): copying the survivors' KV costs about as much as a few steps of the ended rows."""


def _inverse_cdf(probs: torch.Tensor) -> torch.Tensor:
    """One index per row of (B, V) probabilities, drawn with one uniform number in (0, 1] per row."""
    cumulative = probs.cumsum(dim=-1, dtype=torch.float64)
    point = (1 - torch.rand(probs.shape[0], 1, dtype=torch.float64, device=probs.device)) * cumulative[:, -1:]
    # The first entry whose cumulative mass reaches the point: never one of zero probability.
    return torch.searchsorted(cumulative, point).squeeze(1).clamp_max_(probs.shape[1] - 1)


@dataclass(frozen=True)
class Sampling:
    """How to pick each next token: the subset of `GenerationConfig` that `decode` implements."""

    max_new_tokens: int
    """Most tokens generated per row, its end-of-turn token included."""
    stop_ids: frozenset[int]
    """End-of-turn token ids: a row is finished once it emits one."""
    pad_id: int
    """Written into finished rows' positions (as `generate` does); never returned."""
    temperature: float = 1.0
    """Divides the logits before sampling; self-certainty reads the logits at this temperature too."""
    greedy: bool = False
    """Take the argmax instead of sampling (the warpers are then skipped, as in `generate`)."""
    top_k: int | None = None
    """Keep the k most likely tokens; None or 0 keeps all."""
    top_p: float = 1.0
    """Nucleus mass to keep; 1.0 keeps all."""
    min_p: float | None = None
    """Drop tokens below min_p x the top probability; None keeps all."""
    draw: str = "multinomial"
    """How a token is drawn from the warped distribution. 'multinomial': `torch.multinomial`, as `generate`
    does, so a seed gives `generate`'s tokens (GRPO's comparison with TRL's plain path relies on it); it
    draws one exponential number per vocabulary entry, 24 ms a step for 24 rows x 49k tokens on 2 cores.
    'inverse_cdf': the same distribution from one uniform number per row (cumulative sum, binary search),
    about 5 ms, but another random stream than `generate`'s."""

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not self.stop_ids:
            raise ValueError("decoding needs at least one end-of-turn token id in stop_ids")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.draw not in DRAWS:
            raise ValueError(f"draw must be one of {', '.join(DRAWS)}, got {self.draw!r}")

    def warpers(self) -> LogitsProcessorList:
        """transformers' own warpers, in `generate`'s order, so the sampled distribution is the same."""
        warpers = LogitsProcessorList()
        if self.temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(self.temperature))
        if self.top_k:
            warpers.append(TopKLogitsWarper(self.top_k))
        if self.top_p < 1.0:
            warpers.append(TopPLogitsWarper(self.top_p))
        if self.min_p is not None:
            warpers.append(MinPLogitsWarper(self.min_p))
        return warpers


@dataclass
class Prefilled:
    """One prompt after its forward pass: what decoding continues from."""

    ids: list[int]
    """The prompt's token ids."""
    cache: DynamicCache
    """KV of every prompt token, batch size 1."""
    next_logits: torch.Tensor
    """(V,) float32 logits of the first generated token."""


@dataclass(frozen=True)
class Decoded:
    """One generated row."""

    token_ids: list[int]
    """Generated ids up to and including the end-of-turn token (no padding)."""
    certainty: torch.Tensor | None
    """(len(token_ids),) KL(U || p) of each generated position, or None when not asked for."""


def check_supported(model) -> None:
    """Refuse models whose KV cache is not one plain full-attention layer per decoder layer."""
    config = model.config.get_text_config(decoder=True)
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    if kinds != {"full_attention"} or getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        raise NotImplementedError(
            f"{config.model_type}: fast decoding supports full-attention caches only (layer types {sorted(kinds)}, "
            f"sliding window {getattr(config, 'sliding_window', None)}); use transformers' generate instead "
            "(HFPolicy(decoder='generate'), or the plain TRL path in GRPO)"
        )


def _flash(query, key, value, *, causal: bool = False, mask=None, scale=None):
    """torch's CPU flash-attention kernel: (B, H, L, D) output and (B, H, L) log-sum-exps, KV heads shared."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, 0.0, causal, attn_mask=mask, scale=scale)


def _merge(first, first_lse, second, second_lse):
    """Attention over the union of two key sets from each set's output and log-sum-exp (flash decoding)."""
    lse = torch.logaddexp(first_lse, second_lse)
    return first * torch.exp(first_lse - lse)[..., None] + second * torch.exp(second_lse - lse)[..., None]


SDPA_DECODE = "shop_r1_sdpa_decode"
"""The attention implementation decode steps run under when the model uses transformers' SDPA."""


def _sdpa_decode(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                 shared_kv=None, **kwargs):
    """transformers' SDPA attention for one new position per row, the KV heads shared inside SDPA.

    (B, H, 1, D) queries against the rows' own (B, KV, T, D) keys and values under a (B, 1, 1, T) padding
    mask; returns (B, 1, H, D) as transformers' attention functions do. With `shared_kv` (one (1, KV, S,
    D) key-value pair per layer: the first S positions, the same in every row, which the rows' own
    caches then leave out) the B queries also attend to that common prefix, read once for the whole
    batch instead of once per row, and the two parts are merged by their log-sum-exps.
    """
    if shared_kv is None:
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, scale=scaling, enable_gqa=query.shape[1] != key.shape[1]
        )
        return out.transpose(1, 2).contiguous(), None
    mask = None
    if attention_mask is not None:  # the kernel takes an additive mask of the query's dtype
        mask = torch.zeros(attention_mask.shape, dtype=query.dtype, device=query.device).masked_fill_(~attention_mask, -torch.inf)
    rows, heads, _, dim = query.shape
    # A KV head's query heads as its positions: each row's keys are read once, not once per query head (6%).
    own, own_lse = _flash(query.reshape(rows, key.shape[1], -1, dim), key, value, mask=mask, scale=scaling)
    own, own_lse = own.reshape(rows, heads, 1, dim), own_lse.reshape(rows, heads, 1)
    shared_keys, shared_values = shared_kv[module.layer_idx]
    # The rows' queries as the positions of one sequence: (1, H, B, D) against the one shared prefix.
    shared, shared_lse = _flash(query.transpose(0, 2), shared_keys, shared_values, scale=scaling)
    out = _merge(own, own_lse, shared.transpose(0, 2), shared_lse.transpose(0, 2))
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(SDPA_DECODE, _sdpa_decode)
ALL_MASK_ATTENTION_FUNCTIONS.register(SDPA_DECODE, sdpa_mask)

SDPA_PREFILL = "shop_r1_sdpa_prefill"
"""The attention implementation `prefill` runs under on a CPU when the model uses transformers' SDPA."""


PREFILL_CHUNK = 256
"""New positions per causal block in `_sdpa_prefill` (192-256 measured fastest for ~600 new positions)."""


def _sdpa_prefill(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """One unpadded prompt's new positions: each sees the whole reused prefix and the new ones before it.

    With a reused prefix the queries and keys no longer start together, so transformers hands SDPA a full
    mask and every key block is computed for every query, the masked half included. Here the new positions
    go in chunks of `PREFILL_CHUNK`: a chunk attends to everything before it without a mask and to itself
    with the causal kernel, two calls of torch's CPU flash kernel merged by their log-sum-exps. For 561
    new positions after 367 kept: 10.2 ms a layer, against 11.4 with the full mask and 11.0 unchunked.
    (1, H, N, D) queries, (1, KV, kept + N, D) keys and values; returns (1, N, H, D).
    """
    kept = key.shape[2] - query.shape[2]
    chunks = []
    for start in range(0, query.shape[2], PREFILL_CHUNK):
        chunk = query[:, :, start : start + PREFILL_CHUNK]
        before, end = kept + start, kept + start + chunk.shape[2]
        out, lse = _flash(chunk, key[:, :, before:end], value[:, :, before:end], causal=True, scale=scaling)
        if before:
            earlier, earlier_lse = _flash(chunk, key[:, :, :before], value[:, :, :before], scale=scaling)
            out = _merge(earlier, earlier_lse, out, lse)
        chunks.append(out)
    return torch.cat(chunks, dim=2).transpose(1, 2).contiguous(), None


AttentionInterface.register(SDPA_PREFILL, _sdpa_prefill)
ALL_MASK_ATTENTION_FUNCTIONS.register(SDPA_PREFILL, lambda *args, **kwargs: None)  # causal by construction


@contextmanager
def _attention(model, implementation: str) -> Iterator[None]:
    """Run the block's forwards with `implementation` in place of transformers' SDPA (other attention
    kinds are kept)."""
    config = model.config
    previous = config._attn_implementation
    if previous != "sdpa":
        yield
        return
    config._attn_implementation = implementation
    try:
        yield
    finally:
        config._attn_implementation = previous


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for index in range(n):
        if a[index] != b[index]:
            return index
    return n


@torch.inference_mode()
def prefill(model, ids: Sequence[int], reuse: Prefilled | None = None) -> Prefilled:
    """Run one prompt through the model, unpadded; with `reuse`, only the part after their common prefix.

    The reused KV is copied, so `reuse` stays valid. At least the last prompt token is always
    recomputed: its logits are the first generated token's distribution.
    """
    ids = list(ids)
    if not ids:
        raise ValueError("cannot prefill an empty prompt")
    kept = min(_common_prefix(reuse.ids, ids), len(ids) - 1) if reuse is not None else 0
    cache = DynamicCache(config=model.config)
    if kept:
        for index, layer in enumerate(reuse.cache.layers):
            cache.update(layer.keys[..., :kept, :], layer.values[..., :kept, :], index)
    device = model.device
    with _attention(model, SDPA_PREFILL) if device.type == "cpu" else nullcontext():
        out = model(
            input_ids=torch.tensor([ids[kept:]], device=device), past_key_values=cache, use_cache=True, logits_to_keep=1
        )
    return Prefilled(ids=ids, cache=out.past_key_values, next_logits=out.logits[0, -1].float())


class PreallocatedLayer(DynamicLayer):
    """A KV cache layer in a buffer allocated once: an update writes in place and returns views.

    `DynamicLayer` would `torch.cat` the whole cache at every decode step; this one copies only the new
    positions. Inference only (in-place writes cannot carry gradients).
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int):
        super().__init__()
        self._key_buffer, self._value_buffer = keys, values  # (B, H, capacity, D)
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self._set_length(length)

    def _set_length(self, length: int) -> None:
        self.length = length
        self.keys = self._key_buffer[:, :, :length]
        self.values = self._value_buffer[:, :, :length]

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Keep only these batch rows (a copy of theirs), e.g. when the others have ended."""
        self._key_buffer, self._value_buffer = self._key_buffer[rows], self._value_buffer[rows]
        self._set_length(self.length)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if end > self._key_buffer.shape[2]:
            raise RuntimeError(f"KV cache of {self._key_buffer.shape[2]} positions cannot take position {end}")
        self._key_buffer[:, :, self.length : end] = key_states
        self._value_buffer[:, :, self.length : end] = value_states
        self._set_length(end)
        return self.keys, self.values


def _shared_length(rows: Sequence[Prefilled]) -> int:
    """Positions every row's prompt starts with (the whole prompt when all rows are one)."""
    first = rows[0].ids
    return min(_common_prefix(first, row.ids) for row in rows)


def _batch_cache(rows: Sequence[Prefilled], skip: int, width: int, capacity: int) -> Cache:
    """The rows' caches after their first `skip` positions, side by side, right-aligned at `width` (left
    padding, zeros), room up to `capacity`."""
    layers = []
    for index, first in enumerate(rows[0].cache.layers):
        _, heads, _, dim = first.keys.shape
        keys = first.keys.new_empty(len(rows), heads, capacity, dim)
        values = first.values.new_empty(len(rows), heads, capacity, dim)
        for row, prefilled in enumerate(rows):
            layer = prefilled.cache.layers[index]
            start = width - (layer.keys.shape[2] - skip)
            keys[row, :, :start] = 0  # masked, but must be finite: 0 x NaN is NaN
            values[row, :, :start] = 0
            keys[row, :, start:width] = layer.keys[0, :, skip:]
            values[row, :, start:width] = layer.values[0, :, skip:]
        layers.append(PreallocatedLayer(keys, values, width))
    return Cache(layers=layers)


@torch.inference_mode()
def decode(model, rows: Sequence[Prefilled], sampling: Sampling, *, with_certainty: bool = False,
           constraints: Sequence[Any] | None = None) -> list[Decoded]:
    """Generate one row per prefilled prompt (the same one may stand several times), all rows as one batch
    (see the module docstring for how).

    `constraints`: one grammar matcher per row (None: that row is free), from
    `agents.constrained.ResponseGrammar`; each step samples only tokens its grammar allows, while
    self-certainty reads the unmasked logits."""
    if not rows:
        raise ValueError("decode needs at least one prefilled prompt")
    device = model.device
    lengths = torch.tensor([len(row.ids) for row in rows], device=device)  # (B,)
    # On a CPU the prompts' common beginning is kept once, outside the rows' caches (`_sdpa_decode`).
    cascade = len(rows) > 1 and device.type == "cpu" and model.config._attn_implementation == "sdpa"
    skip = _shared_length(rows) if cascade else 0
    shared_kv = [(layer.keys[:, :, :skip], layer.values[:, :, :skip]) for layer in rows[0].cache.layers] if skip else None
    width = int(lengths.max()) - skip
    cache = _batch_cache(rows, skip, width, width + sampling.max_new_tokens)
    padded = bool((lengths - skip != width).any())
    # (B, width + max_new): 0 on the left padding of shorter prompts, 1 on every real and generated position.
    attention = (torch.arange(width + sampling.max_new_tokens, device=device) >= (width - lengths + skip)[:, None]).long()
    warpers = sampling.warpers()
    stop_ids = torch.tensor(sorted(sampling.stop_ids), device=device)
    logits = torch.stack([row.next_logits for row in rows])  # (B, V) float32
    generated = torch.full((len(rows), sampling.max_new_tokens), sampling.pad_id, dtype=torch.long, device=device)
    certainty = torch.zeros(len(rows), sampling.max_new_tokens) if with_certainty else None
    live = torch.arange(len(rows), device=device)  # the rows still in the batch, in `rows`' numbering
    going = torch.ones(len(rows), dtype=torch.bool, device=device)  # live rows that have not ended their turn
    no_ids = torch.empty(len(rows), 0, dtype=torch.long, device=device)  # the warpers used here ignore input ids
    everywhere = torch.ones(len(rows), 1, dtype=torch.bool, device=device)  # one position per row and step
    # Dropping ended rows would change torch.multinomial's draws, which must stay generate's.
    drops_ended = sampling.greedy or sampling.draw != "multinomial"
    masked_rows = None
    if constraints is not None:
        from agents.constrained import MaskedRows

        masked_rows = MaskedRows(constraints, logits.shape[-1])
    with _attention(model, SDPA_DECODE):
        for step in range(sampling.max_new_tokens):
            batch = len(live)
            if with_certainty:
                certainty[live.cpu(), step] = self_certainty(logits[:, None, :], everywhere[:batch], sampling.temperature).cpu()
            allowed = logits if masked_rows is None else masked_rows.mask(logits)
            if sampling.greedy:
                chosen = allowed.argmax(dim=-1)
            else:
                probs = torch.softmax(warpers(no_ids[:batch], allowed), dim=-1)
                chosen = torch.multinomial(probs, num_samples=1).squeeze(1) if sampling.draw == "multinomial" else _inverse_cdf(probs)
            chosen = torch.where(going, chosen, sampling.pad_id)
            if masked_rows is not None:
                masked_rows.advance(chosen.tolist(), going.tolist())
            generated[live, step] = chosen
            going &= ~torch.isin(chosen, stop_ids)
            if not going.any() or step + 1 == sampling.max_new_tokens:
                break
            if drops_ended and int((~going).sum()) * DROP_ENDED_FRACTION >= batch:
                keep = going.nonzero().squeeze(1)
                for layer in cache.layers:
                    layer.keep_rows(keep)
                live, lengths, attention, chosen, going = live[keep], lengths[keep], attention[keep], chosen[keep], going[keep]
                padded = padded and bool((lengths - skip != width).any())
                if masked_rows is not None:
                    masked_rows.keep(keep.tolist())
            out = model(
                input_ids=chosen[:, None],
                attention_mask=attention[:, : width + step + 1] if padded else None,
                position_ids=(lengths + step)[:, None],
                past_key_values=cache,
                use_cache=True,
                **({"shared_kv": shared_kv} if shared_kv else {}),
            )
            logits = out.logits[:, -1].float()
    decoded = []
    for row, ids in enumerate(generated.tolist()):
        # A row that never ended its turn ran every step: all rows ran until the last one ended.
        end = next((position + 1 for position, token in enumerate(ids) if token in sampling.stop_ids), sampling.max_new_tokens)
        decoded.append(Decoded(ids[:end], certainty[row, :end] if certainty is not None else None))
    return decoded
