"""Presets (`--preset cpu|paper`), the paper's baselines and ablations, and how command-line flags apply.

A run's config is: the dataclass defaults (the paper's numbers), then the preset's overrides, then the
flags the user gave. Recipes, one command each (paper Tables 2 and 4):

    zero-shot            shop-r1 eval --policy smollm2
    SFT only             shop-r1 sft --preset cpu
    RL (binary)          shop-r1 train --preset cpu --no-sft --baseline rl_binary
    SFT + RL (binary)    shop-r1 train --preset cpu --baseline rl_binary
    Shop-R1              shop-r1 train --preset cpu
    Table 4 rows         shop-r1 train --preset cpu --ablation no_format|no_rationale|no_dars|binary|no_sft
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

from shop_env.rewards import ABLATIONS, RewardConfig

PRESETS = ("cpu", "paper")
TRAINING_ABLATIONS = ("no_sft",)
"""Table 4's switch that is not a reward setting: skip the SFT warm start."""
BASELINES: dict[str, dict[str, Any]] = {
    "rl_binary": {"action_reward": "binary", "use_format": False, "alpha": 0.0},
}
"""Table 2's RL baseline: the sparse binary action reward alone (no format reward, no self-certainty)."""

# The embedded SmolLM2-135M on a shared 2-core CPU, measured here: a forward + backward over 1,450 tokens
# took 35 s under load, so the context window is 1,024 tokens (the fixed instructions take ~250 of them)
# and a GRPO step (1 prompt x 4 completions + the reference forward, the prompt computed once per group)
# takes tens of seconds. The learning rates are raised from the paper's, which are tuned for 3B models and
# hundreds of steps: at 1e-7, 8 GRPO steps move a 135M model by nothing measurable, and 12 SFT steps
# need more than 2e-5 to learn the response format. Every stage uses the same 96 response tokens, so
# SFT, GRPO and evaluation build the same prompts.
_CPU_COMMON = {"model": "smollm2", "context_window": 1024, "max_new_tokens": 96, "bf16": False,
               "gradient_checkpointing": False}
SFT_PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {**_CPU_COMMON, "max_examples": 48, "epochs": 1.0, "learning_rate": 1e-4, "batch_size": 4,
            "micro_batch_size": 1, "save_steps": 4},
    "paper": {"model": "Qwen/Qwen2.5-3B-Instruct", "context_window": 32_768, "bf16": True,
              "gradient_checkpointing": True},
}
GRPO_PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {**_CPU_COMMON, "max_steps": 8, "learning_rate": 2e-6, "num_generations": 4, "prompts_per_step": 1,
            "micro_batch_size": 4, "save_steps": 2},
    # micro_batch_size = G: a micro-batch is one whole group, so shared-prefix GRPO computes its 32k prompt
    # once; it holds one prompt + 8 responses (~35k tokens), about the paper's per-device batch of one sequence.
    "paper": {"model": "Qwen/Qwen2.5-3B-Instruct", "context_window": 32_768, "bf16": True,
              "gradient_checkpointing": True, "micro_batch_size": 8},
}

Config = TypeVar("Config")


def reward_config(
    *, ablation: str | None = None, baseline: str | None = None, action_reward: str | None = None,
    alpha: float | None = None,
) -> RewardConfig:
    """The reward for a recipe: the paper's default, a Table 4 ablation or a Table 2 baseline, then flags."""
    if ablation is not None and baseline is not None:
        raise ValueError(f"choose --ablation {ablation} or --baseline {baseline}, not both")
    config = RewardConfig()
    if ablation is not None and ablation not in TRAINING_ABLATIONS:
        config = RewardConfig.ablation(ablation)
    if baseline is not None:
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
        config = replace(config, **BASELINES[baseline])
    overrides = {k: v for k, v in {"action_reward": action_reward, "alpha": alpha}.items() if v is not None}
    return replace(config, **overrides)


def check_ablation(name: str | None) -> None:
    """Raise a ValueError listing the valid names when `name` is not one of Table 4's switches."""
    valid = (*ABLATIONS, *TRAINING_ABLATIONS)
    if name is not None and name not in valid:
        raise ValueError(f"unknown ablation {name!r}; expected one of {', '.join(valid)}")


def build_config(cls: type[Config], preset: str | None, presets: dict[str, dict[str, Any]], **flags: Any) -> Config:
    """`cls()` with the preset's overrides, then every flag that is not None (flags the user did not give)."""
    if preset is not None and preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(presets)}")
    names = {f.name for f in fields(cls)}
    unknown = set(flags) - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    values = dict(presets.get(preset, {})) if preset else {}
    values.update({k: v for k, v in flags.items() if v is not None})
    return cls(**values)


def sft_config(preset: str | None = None, **flags: Any):
    """The SFT config for a preset and the given flags (None = not given)."""
    from training.sft import SFTRunConfig

    return build_config(SFTRunConfig, preset, SFT_PRESETS, **flags)


def grpo_config(
    preset: str | None = None, *, ablation: str | None = None, baseline: str | None = None,
    action_reward: str | None = None, alpha: float | None = None, **flags: Any,
):
    """The GRPO config for a preset, a recipe (ablation or baseline) and the given flags."""
    from training.grpo import GRPORunConfig

    check_ablation(ablation)
    reward = reward_config(ablation=ablation, baseline=baseline, action_reward=action_reward, alpha=alpha)
    return build_config(GRPORunConfig, preset, GRPO_PRESETS, reward=reward, **flags)


def train_config(
    preset: str | None = None, *, out: str | None = None, model: str | None = None, no_sft: bool = False,
    ablation: str | None = None, baseline: str | None = None, action_reward: str | None = None,
    alpha: float | None = None, max_steps: int | None = None, eval_sessions: str | None = None,
    eval_limit: int | None = None, **shared: Any,
):
    """The `shop-r1 train` config: `--max-steps` caps both stages, `--model` is SFT's start (GRPO's with no SFT)."""
    from training.pipeline import TrainRunConfig

    sft = sft_config(preset, model=model, max_steps=max_steps, **shared)
    grpo = grpo_config(
        preset, ablation=ablation, baseline=baseline, action_reward=action_reward, alpha=alpha, model=model,
        max_steps=max_steps, **shared,
    )
    extra = {k: v for k, v in {"out": out, "eval_sessions": eval_sessions, "eval_limit": eval_limit}.items() if v is not None}
    return TrainRunConfig(sft=sft, grpo=grpo, skip_sft=no_sft or ablation in TRAINING_ABLATIONS, **extra)
