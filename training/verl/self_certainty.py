"""Self-certainty on verl: a registered trainer step plus an engine-side computation from the actor's logits.

verl 0.9's actor already runs a full-logit pass per step, the old-log-prob pass, where it computes
per-token entropy from the temperature-scaled logits. Self-certainty needs the same logits, so it
rides on that pass:

- `ShopR1FSDPEngine` (the FSDP/FSDP2 language-model engine plus one step): when the micro-batch carries
  the `calculate_self_certainty` flag, it also returns `self_certainty`, KL(U || p) per token from the
  logits scaled by the rollout temperature (`rationale_reward.token_self_certainty`, which calls
  `shop_env.self_certainty`). Like entropy, it is gathered across Ulysses ranks and returned per token,
  so verl stores it in TransferQueue beside `log_probs`. Without the flag the engine is verl's.
- `ShopR1SyncTrainer`, registered as trainer mode `shop_r1_sync` (verl's synchronous trainer plus one
  step): it sets the flag for the old-log-prob pass, then averages the values over each response's
  rationale tokens, and adds alpha x s to the rule score (`rm_scores`, from `training/verl/reward.py`)
  before `_compute_advantage`, so GRPO normalizes format + action + alpha x s per group (Eq. 4).
  It logs `reward/self_certainty` (mean s, nats), `reward/rationale` (mean alpha x s) and
  `reward/rationale_coverage` (share of responses with a rationale to score).

Loading: verl imports the modules named in `VERL_USE_EXTERNAL_MODULES` whenever it is imported, in the
driver and in every Ray worker. The launch scripts set it to this module, in the shell and in Ray's
runtime env (`ray_kwargs.ray_init.runtime_env.env_vars`), and select the trainer with
`trainer.v1.trainer_mode=shop_r1_sync`. The engine is registered for vendor "nvidia", which verl's
registry prefers over the vendor-less default, so the override needs no change inside verl.

alpha is `reward.custom_reward_function.reward_kwargs.alpha` (0.005 by default); with alpha = 0 (the
no-rationale ablation, the binary baseline) nothing extra is computed.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import transfer_queue as tq
from tensordict import TensorDict
from torch.distributed.tensor import DTensor

from training.verl.rationale_reward import (
    add_at_last_token,
    certainty_weight,
    rationale_certainties,
    rationale_rewards,
    token_self_certainty,
)
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils import tensordict_utils as tu
from verl.workers.engine.base import EngineRegistry
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead
from verl.workers.utils.padding import response_from_nested

logger = logging.getLogger(__name__)

TRAINER_MODE = "shop_r1_sync"
"""`trainer.v1.trainer_mode` that selects `ShopR1SyncTrainer`."""
CERTAINTY_FLAG = "calculate_self_certainty"
"""Micro-batch flag (like verl's `calculate_entropy`) that asks the engine for per-token self-certainty."""
CERTAINTY_FIELD = "self_certainty"
"""The engine's per-token output, stored in TransferQueue beside `log_probs`."""
ENGINE_VENDORS = ("nvidia",)
"""Vendors the engine is registered for: verl picks a (device, vendor) entry over the default one."""


@EngineRegistry.register(model_type="language_model", backend=["fsdp", "fsdp2"], device="cuda", vendor=list(ENGINE_VENDORS))
class ShopR1FSDPEngine(FSDPEngineWithLMHead):
    """verl's FSDP language-model engine that also returns per-token self-certainty when asked."""

    def prepare_model_outputs(self, output, output_args, micro_batch: TensorDict, logits_processor_func):
        model_output = super().prepare_model_outputs(output, output_args, micro_batch, logits_processor_func)
        if tu.get_non_tensor_data(data=micro_batch, key=CERTAINTY_FLAG, default=False):
            model_output[CERTAINTY_FIELD] = self._self_certainty(output, output_args, micro_batch)
        return model_output

    def _self_certainty(self, output, output_args, micro_batch: TensorDict) -> torch.Tensor:
        """Nested (bsz, prompt + response) KL(U || p) per position, laid out like verl's entropy."""
        if tu.get_non_tensor_data(data=micro_batch, key="use_fused_kernels", default=False):
            raise ValueError("self-certainty needs the logits; set actor_rollout_ref.model.use_fused_kernels=False")
        logits = output.logits
        if isinstance(logits, DTensor):  # tensor parallel: logits sharded over the vocabulary
            logits = logits.full_tensor()
        cu_seqlens = micro_batch["input_ids"].offsets()
        if tu.get_non_tensor_data(data=micro_batch, key="use_remove_padding", default=True):
            logits = logits.squeeze(0)  # (local packed tokens + pad, V)
            values = token_self_certainty(logits, output_args["temperature_rmpad"])  # (local packed + pad,)
            values = self._gather_and_unpad_packed(values, output_args["pad_size"])  # (total packed,)
        else:
            batch_size, seq_len, vocab = logits.shape  # (bsz, max seq len, V), right-padded
            temperatures = output_args["temperature"].repeat_interleave(seq_len)  # (bsz * seq len,)
            padded = token_self_certainty(logits.reshape(-1, vocab), temperatures).view(batch_size, seq_len)
            lengths = cu_seqlens.diff().tolist()
            values = torch.cat([padded[row, :length] for row, length in enumerate(lengths)])  # (total packed,)
        return torch.nested.nested_tensor_from_jagged(values, cu_seqlens)


@register_trainer(TRAINER_MODE)
class ShopR1SyncTrainer(PPOTrainerSync):
    """verl's synchronous PPO/GRPO trainer plus Shop-R1's rationale reward before the advantage step."""

    def __init__(self, config):
        self.certainty_weight = certainty_weight(config)  # alpha; raises on a config that cannot compute s
        # verl branches on the literal mode "sync" (replay buffer, checkpoints); this trainer is that mode.
        config.trainer.v1.trainer_mode = "sync"
        super().__init__(config)

    def _compute_old_log_prob(self, batch, metrics: dict):
        if not self.certainty_weight:
            return super()._compute_old_log_prob(batch, metrics)
        flagged = batch
        flagged.extra_info[CERTAINTY_FLAG] = True
        try:
            batch = super()._compute_old_log_prob(flagged, metrics)
        finally:  # the reference and update passes must not compute it again
            flagged.extra_info.pop(CERTAINTY_FLAG, None)
        batch.extra_info.pop(CERTAINTY_FLAG, None)
        return self._add_rationale_reward(batch, metrics)

    def _add_rationale_reward(self, batch, metrics: dict):
        """rm_scores += alpha x mean self-certainty over each response's rationale tokens."""
        fields = [CERTAINTY_FIELD, "response_mask", "responses", "rm_scores"]
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        if CERTAINTY_FIELD not in data.keys():  # TransferQueue leaves out fields nobody wrote
            raise RuntimeError(
                f"the actor returned no '{CERTAINTY_FIELD}': its workers run verl's own engine. Set "
                f"VERL_USE_EXTERNAL_MODULES={__name__} in ray_kwargs.ray_init.runtime_env.env_vars (the launch "
                "scripts do) and install shop-r1 on every node"
            )
        per_token = response_from_nested(data[CERTAINTY_FIELD], data["response_mask"]).unbind()  # B x (T_i,)
        responses = data["responses"].unbind()  # B x (T_i,) sampled token ids
        certainties = rationale_certainties(per_token, [ids.tolist() for ids in responses], self.tokenizer)
        rewards = rationale_rewards(certainties, self.certainty_weight)
        scores = add_at_last_token(data["rm_scores"].unbind(), rewards)
        tq.kv_batch_put(
            keys=batch.keys,
            partition_id=batch.partition_id,
            fields=TensorDict(
                {"rm_scores": torch.nested.as_nested_tensor(scores, layout=torch.jagged)}, batch_size=len(scores)
            ),
        )
        real = [not tag.get("is_padding", False) for tag in batch.tags]  # verl pads batches to divide by DP
        scored = [value for value, keep in zip(certainties, real, strict=True) if keep and value is not None]
        kept_rewards = [value for value, keep in zip(rewards, real, strict=True) if keep]
        metrics.update(
            {
                "reward/self_certainty": float(np.mean(scored)) if scored else 0.0,
                "reward/rationale": float(np.mean(kept_rewards)) if kept_rewards else 0.0,
                "reward/rationale_coverage": len(scored) / max(1, sum(real)),
            }
        )
        return batch
