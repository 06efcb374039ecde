"""Shared-prefix GRPO: the G completions of one prompt share a single forward pass of that prompt.

TRL's GRPOTrainer repeats every prompt G times: in the rollout batch, in the policy's loss forward and
in the reference forward. With the paper's 32k-token prompts, G = 8 and responses of at most 256
tokens, 7 of every 8 prompt forwards (~87% of a step's FLOPs) recompute what the first one already
did. Prefix Grouper (arXiv 2506.05433) removes that repetition; this module does the same with the KV
cache every transformers causal LM already has:

- Rollout (`generate_completions`): each distinct prompt is prefilled once, its cache laid into G rows,
  and all rows decoded as one batch (`agents.decoding`), sampling exactly as `generate` does.
- Log-probs (`shared_prefix_logps`, used for the policy loss, with gradients, and for the reference):
  the prompt minus its last token runs once, batch 1, building its KV cache; the cache is expanded to
  the group's rows (a view: the backward pass sums the rows' gradients into the one prompt pass), and
  the rows' [last prompt token, completion] run on top of it through TRL's fused LM head, so the
  per-token log-probs are those of TRL's plain path, the loss is TRL's own, and gradients flow
  through the shared prefix. The LM head also runs only on completion positions, not on the prompt.

Rows are grouped by their unpadded prompt ids, so any micro-batch works; sharing pays when a
micro-batch holds whole groups (`micro_batch_size` a multiple of G; `group_shuffle` keeps groups
together when TRL splits a generation batch into micro-batches).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import DynamicCache

from agents.decoding import Decoded, Sampling, decode, prefill


def generate_completions(model, prompt_ids: Sequence[Sequence[int]], sampling: Sampling, *, with_certainty: bool) -> list[Decoded]:
    """One `Decoded` per prompt row; each distinct prompt (consecutive equal rows) is prefilled once."""
    rows = []
    for ids in prompt_ids:
        if rows and rows[-1].ids == list(ids):
            rows.append(rows[-1])
        else:
            rows.append(prefill(model, ids))
    return decode(model, rows, sampling, with_certainty=with_certainty)


def prompt_groups(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> list[tuple[torch.Tensor, list[int]]]:
    """(unpadded prompt ids, row indices) per distinct prompt, in order of first appearance."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for row in range(prompt_ids.size(0)):
        key = tuple(prompt_ids[row][prompt_mask[row].bool()].tolist())
        groups.setdefault(key, []).append(row)
    return [(torch.tensor(key, device=prompt_ids.device), rows) for key, rows in groups.items()]


def _expanded(cache: DynamicCache, rows: int, config: Any) -> DynamicCache:
    """A new cache whose every layer is `cache`'s batch-1 keys and values expanded to `rows` (a view)."""
    grouped = DynamicCache(config=config)
    for index, layer in enumerate(cache.layers):
        grouped.update(layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1), index)
    return grouped


def shared_prefix_logps(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int, compute_entropy: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (and entropies) of the completions, as TRL's `_get_per_token_logps_and_entropies`.

    `input_ids` / `attention_mask` are TRL's (B, P + C): left-padded prompts, then right-padded
    completions of width C = `logits_to_keep`. `model` must carry TRL's fused LM head (the trainer adds
    it), which applies the sampling temperature. Returns (B, C) log-probs and entropies (or None).
    """
    width = input_ids.size(1) - logits_to_keep
    completions = input_ids[:, width:]  # (B, C)
    completion_mask = attention_mask[:, width:]  # (B, C)
    config = model.config
    order: list[int] = []
    logps, entropies = [], []
    for prompt, rows in prompt_groups(input_ids[:, :width], attention_mask[:, :width]):
        cache = DynamicCache(config=config)
        if prompt.numel() > 1:  # the prompt minus its last token, once: (1, P - 1)
            model(input_ids=prompt[None, :-1], past_key_values=cache, use_cache=True, logits_to_keep=1)
        # (g, 1 + C): the last prompt token predicts the first completion token.
        tokens = torch.cat([prompt[-1:].expand(len(rows), 1), completions[rows]], dim=1)
        scored = torch.cat([torch.zeros_like(tokens[:, :1]), completion_mask[rows]], dim=1)
        out = model(
            input_ids=tokens,
            past_key_values=_expanded(cache, len(rows), config),
            labels=tokens.masked_fill(scored == 0, -100),
            fused_lm_head=True,
        )
        logps.append(out.log_probs[:, -logits_to_keep:])  # (g, C)
        if compute_entropy:
            entropies.append(out.entropy[:, -logits_to_keep:])
        order.extend(rows)
    inverse = torch.empty(len(order), dtype=torch.long, device=input_ids.device)
    inverse[torch.tensor(order, device=input_ids.device)] = torch.arange(len(order), device=input_ids.device)
    return torch.cat(logps)[inverse], (torch.cat(entropies)[inverse] if compute_entropy else None)


def group_shuffle(batch: dict[str, Any], group_size: int) -> dict[str, Any]:
    """TRL's generation-batch shuffle, by whole groups of `group_size` consecutive rows instead of by row."""
    size = len(next(value for value in batch.values() if value is not None and getattr(value, "ndim", 1) >= 1))
    if size % group_size:
        raise ValueError(f"a generation batch of {size} rows is not whole groups of {group_size}")
    order = (torch.randperm(size // group_size)[:, None] * group_size + torch.arange(group_size)).flatten()

    def permute(value):
        if value is None or isinstance(value, torch.Tensor) and value.ndim == 0:
            return value
        if isinstance(value, torch.Tensor):
            return value[order]
        return [value[i] for i in order.tolist()]

    return {key: permute(value) for key, value in batch.items()}
