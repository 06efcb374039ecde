"""Training on one machine with TRL: SFT cold start, Shop-R1 GRPO, and `train` (SFT -> GRPO -> eval).

    shop-r1 train --preset cpu --out runs/shop_r1         # embedded SmolLM2 on a CPU
    shop-r1 train --preset paper --out runs/shop_r1       # Qwen2.5-3B-Instruct, 32k context, one GPU

Public names load lazily, so `import training` does not import torch, transformers or TRL until a
name that needs them is used. `training/verl/` is the multi-GPU path; it reuses `step_example`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shop_env.lazy_exports import lazy_getattr

_EXPORTS = {
    "PromptBudget": "agents.context_builder",
    "step_example": "training.data",
    "rl_rows": "training.data",
    "sft_rows": "training.data",
    "select_steps": "training.data",
    "SFTRunConfig": "training.sft",
    "run_sft": "training.sft",
    "GRPORunConfig": "training.grpo",
    "ShopR1Reward": "training.grpo",
    "ShopR1GRPOTrainer": "training.grpo",
    "run_grpo": "training.grpo",
    "TrainRunConfig": "training.pipeline",
    "run_train": "training.pipeline",
    "RunDir": "training.run_dir",
}
__all__ = list(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from agents.context_builder import PromptBudget
    from training.data import rl_rows, select_steps, sft_rows, step_example
    from training.grpo import GRPORunConfig, ShopR1GRPOTrainer, ShopR1Reward, run_grpo
    from training.pipeline import TrainRunConfig, run_train
    from training.run_dir import RunDir
    from training.sft import SFTRunConfig, run_sft
