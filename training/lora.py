"""LoRA (peft) for SFT and GRPO: `--lora-rank N` trains rank-N adapters instead of every weight.

The trainers get a `peft.LoraConfig` (TRL's SFTTrainer and GRPOTrainer wrap the model themselves), so
the run's `model/` holds only the adapter (adapter_config.json + adapter_model.safetensors) and the
tokenizer. The adapter records its base model by the name it was loaded under (`smollm2`, `tiny-random`,
an HF id, or an absolute path), so `agents.models.load_model_and_tokenizer` finds the base offline on
any machine, applies the adapter and merges it for full-speed inference.

With LoRA, TRL's GRPO reference policy is the trained model with its adapter disabled: no second copy
of the weights. GRPO from an SFT LoRA run (`--model runs/sft/model`) loads base + SFT adapter merged,
and with `--lora-rank` trains a new adapter on top; that adapter's base is the SFT run's model/, so
loading it applies both in turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from peft import LoraConfig

ALL_LINEAR = "all-linear"
"""peft's shorthand for every Linear layer except the output head: in Llama / Qwen / SmolLM2 the
attention's q/k/v/o and the MLP's gate/up/down projections, the common choice for LoRA."""


class LoraFields(Protocol):
    lora_rank: int
    lora_alpha: int | None
    lora_target_modules: str


def check_lora_fields(config: LoraFields) -> None:
    """Raise a ValueError naming the field when a run config's LoRA settings are unusable."""
    if isinstance(config.lora_rank, bool) or not isinstance(config.lora_rank, int) or config.lora_rank < 0:
        raise ValueError(f"lora_rank must be an integer >= 0 (0: full fine-tuning), got {config.lora_rank!r}")
    if config.lora_alpha is not None and (not isinstance(config.lora_alpha, (int, float)) or config.lora_alpha <= 0):
        raise ValueError(f"lora_alpha must be > 0 or None (2 x lora_rank), got {config.lora_alpha!r}")
    if not target_modules(config):
        raise ValueError(f"lora_target_modules must be {ALL_LINEAR!r} or comma-separated module names, got {config.lora_target_modules!r}")


def target_modules(config: LoraFields) -> str | list[str]:
    """peft's `target_modules`: the 'all-linear' shorthand as is, else the list of names."""
    text = config.lora_target_modules.strip()
    if text.lower() == ALL_LINEAR:
        return ALL_LINEAR
    return [name.strip() for name in text.split(",") if name.strip()]


def lora_config(config: LoraFields) -> LoraConfig | None:
    """The peft config TRL's trainers take as `peft_config`, or None for full fine-tuning (lora_rank 0)."""
    if not config.lora_rank:
        return None
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_rank,
        lora_alpha=config.lora_alpha if config.lora_alpha is not None else 2 * config.lora_rank,
        lora_dropout=0.0,  # GRPO compares the policy with its reference token by token; dropout would add noise to both
        target_modules=target_modules(config),
    )


def check_reference_policy(model: str, lora_rank: int, beta: float) -> None:
    """Refuse full-fine-tuning GRPO with a KL term from a LoRA adapter directory.

    TRL builds the full-fine-tuning reference by reloading the policy's `config._name_or_path`, which for
    a merged adapter is the bare base model: the KL would pull towards the wrong policy. With
    `--lora-rank` the reference is the merged start policy itself (the new adapter disabled).
    """
    from agents.models import is_adapter_dir

    if not lora_rank and beta and is_adapter_dir(model):
        raise ValueError(
            f"--model {model} is a LoRA adapter: full-fine-tuning GRPO would take the bare base model as its KL "
            "reference. Pass --lora-rank N (the reference is then the merged adapter's policy), or beta=0"
        )
