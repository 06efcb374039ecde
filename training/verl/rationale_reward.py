"""The rationale reward alpha x self-certainty on verl's batches: the tensor math, with no verl import.

`training/verl/self_certainty.py` wires these functions into verl (an FSDP engine and a trainer step);
they live here so they can be tested on a CPU without verl. The self-certainty itself is
`shop_env.self_certainty.self_certainty`, the function the TRL trainer uses, never a copy:

1. engine side, `token_self_certainty`: KL(U || p) of every position's next-token distribution,
   from the temperature-scaled logits of the actor's log-prob pass (one value per token, like
   verl's entropy), by calling the shared function with each position as its own one-token sequence;
2. trainer side, `rationale_certainties`: the mean of those values over each response's rationale
   tokens (`shop_env.self_certainty.rationale_mask_for` on the sampled token ids), None when the
   response fails the format (no rationale, nothing to reward);
3. `rationale_rewards` turns them into alpha x s, and `add_at_last_token` adds that to verl's
   token-level rule score (which sits on the last response token) before the advantage step, so
   GRPO normalizes format + action + alpha x s together, as Eq. 4 asks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from shop_env.self_certainty import rationale_mask_for, self_certainty

SELF_CERTAINTY_ENGINES = ("fsdp", "fsdp2")
"""Actor strategies whose engine `training/verl/self_certainty.py` extends."""


@torch.no_grad()
def token_self_certainty(logits: torch.Tensor, temperatures: torch.Tensor) -> torch.Tensor:
    """KL(U || softmax(logits_n / t_n)) for every row n: one value per packed token position.

    Args:
        logits: (N, V) next-token logits of N packed positions, any float dtype.
        temperatures: (N,) the sampling temperature of each position's sequence (verl packs a
            per-token temperature; padding positions carry 1.0).

    Returns:
        (N,) float32 nats. Rows are grouped by temperature and passed to the shared
        `self_certainty` as (N, 1, V) one-token sequences, so the math and its chunked float32
        upcast are exactly the TRL trainer's; no (N, V) copy is made.

    >>> token_self_certainty(torch.zeros(2, 8), torch.tensor([0.6, 1.0]))  # uniform logits
    tensor([0., 0.])
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (positions, vocab); got shape {tuple(logits.shape)}")
    if tuple(temperatures.shape) != (logits.shape[0],):
        raise ValueError(
            f"temperatures must be ({logits.shape[0]},), one per position; got {tuple(temperatures.shape)}"
        )
    values = torch.zeros(logits.shape[0], dtype=torch.float32, device=logits.device)  # (N,)
    sequences = logits.unsqueeze(1)  # (N, 1, V): a view, each position its own sequence
    for temperature in temperatures.unique().tolist():
        rows = (temperatures == temperature).unsqueeze(1)  # (N, 1)
        values += self_certainty(sequences, rows, float(temperature)).float()  # (N,), 0 off the rows
    return values


def rationale_certainties(
    per_token: Sequence[torch.Tensor], response_ids: Sequence[Sequence[int]], tokenizer: Any
) -> list[float | None]:
    """Mean self-certainty over each response's rationale tokens; None when it has no rationale.

    `per_token[i][j]` must be the value of the distribution that produced `response_ids[i][j]`
    (verl's `response_from_nested` does that shift). The text the mask reads is the one verl's reward
    manager scores: `tokenizer.decode(ids, skip_special_tokens=True)`.
    """
    if len(per_token) != len(response_ids):
        raise ValueError(f"{len(per_token)} self-certainty rows for {len(response_ids)} responses")
    certainties: list[float | None] = []
    for index, (values, ids) in enumerate(zip(per_token, response_ids, strict=True)):
        ids = [int(token) for token in ids]
        if len(values) != len(ids):
            raise ValueError(f"response {index}: {len(values)} self-certainty values for {len(ids)} tokens")
        text = tokenizer.decode(ids, skip_special_tokens=True)
        mask = torch.as_tensor(rationale_mask_for(tokenizer, text, ids), dtype=torch.bool)  # (T,)
        certainties.append(float(values[mask.to(values.device)].double().mean()) if mask.any() else None)
    return certainties


def rationale_rewards(certainties: Sequence[float | None], alpha: float) -> list[float]:
    """alpha x s per response: 0 without a rationale, and 0 for a non-finite or negative s (one NaN
    would poison the whole GRPO group's advantages), as `shop_env.rewards` pays it.

    >>> rationale_rewards([20.0, None, float("nan")], 0.005)
    [0.1, 0.0, 0.0]
    """
    return [
        alpha * value if value is not None and math.isfinite(value) and value >= 0 else 0.0
        for value in certainties
    ]


def add_at_last_token(scores: Sequence[torch.Tensor], additions: Sequence[float]) -> list[torch.Tensor]:
    """Each response's token-level scores with `additions[i]` added on its last token, where verl's
    reward managers put the sequence reward; empty responses stay empty.

    >>> add_at_last_token([torch.tensor([0.0, 0.0, 1.5])], [0.1])
    [tensor([0.0000, 0.0000, 1.6000])]
    """
    if len(scores) != len(additions):
        raise ValueError(f"{len(additions)} additions for {len(scores)} responses")
    updated = []
    for row, addition in zip(scores, additions, strict=True):
        row = row.clone()
        if row.numel():
            row[-1] += addition
        updated.append(row)
    return updated


def certainty_weight(config: Mapping[str, Any]) -> float:
    """alpha, read from the verl config, after checking that self-certainty can be computed there.

    alpha is `reward.custom_reward_function.reward_kwargs.alpha` (the same kwargs `compute_score`
    builds its `RewardConfig` from; RewardConfig's default when absent). With alpha > 0 the actor
    must run the FSDP engine on real logits, and old log-probs must be recomputed (the pass that
    carries the self-certainty). Raises ValueError naming the key to change.
    """
    from training.verl.reward import reward_config_from_kwargs

    reward_kwargs = dict(config["reward"]["custom_reward_function"].get("reward_kwargs") or {})
    alpha = reward_config_from_kwargs(reward_kwargs).alpha
    if not alpha:
        return 0.0
    actor = config["actor_rollout_ref"]["actor"]
    if actor["strategy"] not in SELF_CERTAINTY_ENGINES:
        raise ValueError(
            f"actor_rollout_ref.actor.strategy={actor['strategy']}: the self-certainty engine extends verl's "
            f"{'/'.join(SELF_CERTAINTY_ENGINES)} engine only; use one of those or set "
            "reward.custom_reward_function.reward_kwargs.alpha=0"
        )
    if config["actor_rollout_ref"]["model"].get("use_fused_kernels"):
        raise ValueError(
            "actor_rollout_ref.model.use_fused_kernels=True never materializes the logits self-certainty "
            "needs; set it to False or set reward.custom_reward_function.reward_kwargs.alpha=0"
        )
    rollout_correction = config["algorithm"].get("rollout_correction") or {}
    if rollout_correction.get("bypass_mode"):
        raise ValueError(
            "algorithm.rollout_correction.bypass_mode=True skips the actor's log-prob pass that computes "
            "self-certainty; set it to False or set reward.custom_reward_function.reward_kwargs.alpha=0"
        )
    return alpha
