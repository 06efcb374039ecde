"""SFT cold start with TRL's SFTTrainer: learn to write the rationale + action JSON from recorded sessions.

Each example is one step of a session: the prompt the agent sees at eval time (whole-session context
within the token budget) and the assistant turn `format_response(rationale, action)`. The dataset is
prompt-completion, so TRL's SFTTrainer computes the loss on the assistant tokens only.

    shop-r1 sft --preset cpu --out runs/sft                  # embedded SmolLM2 on a CPU
    shop-r1 sft --preset paper --out runs/sft                # Qwen2.5-3B, 32k context, 4 epochs, lr 2e-5
    shop-r1 sft --preset cpu --max-steps 2 --model tiny-random --out /tmp/sft   # a smoke test
    shop-r1 sft --preset cpu --lora-rank 16 --out runs/sft   # LoRA adapters (training/lora.py): model/ is the adapter
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from agents.context_builder import PromptBudget
from training.data import MISSING_RATIONALE_POLICIES, select_steps, sft_rows, to_dataset
from training.lora import ALL_LINEAR, check_lora_fields, lora_config
from training.run_dir import RunDir, finish_run, run_callbacks, run_trainer, trainer_run_args

logger = logging.getLogger(__name__)


@dataclass
class SFTRunConfig:
    """One SFT run. Defaults are the paper's (docs/contract.md, the paper's training setup); presets override a few fields."""

    model: str = "Qwen/Qwen2.5-3B-Instruct"
    """Model to fine-tune: `smollm2`, `tiny-random`, an HF id or a local path."""
    sessions: str = "bundled:train"
    """Sessions with rationales: `bundled:train`, or a file or directory `load_sessions` reads."""
    out: str = "runs/sft"
    """Run directory: config.json, metrics.jsonl, tensorboard/, checkpoints/, model/, plots/."""
    seed: int = 0
    """Seeds the example subset, the data order and initialization."""
    context: str = "whole"
    """Prompt context: 'whole' (past pages + actions, the paper's SFT) or 'latest' (Table 5)."""
    context_window: int = 32_768
    """Context window, prompt + response (paper: 32k); prompts are cut to this minus max_new_tokens."""
    max_new_tokens: int = 256
    """Room for the assistant turn (use the GRPO and eval value, so the prompts are the same ones)."""
    max_examples: int | None = None
    """Train on a seeded subset of this many steps (None: every step with a rationale)."""
    missing_rationale: str = "skip"
    """Steps without a recorded rationale: 'skip' them or train them with an empty rationale ('empty')."""
    epochs: float = 4.0
    """Passes over the examples (paper: 4)."""
    learning_rate: float = 2e-5
    """AdamW learning rate (paper: 2e-5), TRL's linear decay."""
    batch_size: int = 64
    """Examples per optimizer step (paper: global batch 64)."""
    micro_batch_size: int = 1
    """Examples per forward/backward (paper: per-device batch 1); the rest is gradient accumulation."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (None: run the epochs)."""
    save_steps: int = 200
    """Checkpoint every N optimizer steps (and at the end); `--resume` continues from the last one."""
    bf16: bool = False
    """Train in bfloat16 (GPUs with bf16 support); CPU runs stay in float32."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: needed for 32k prompts on one GPU, slower."""
    lora_rank: int = 0
    """0: train every weight. N > 0: train rank-N LoRA adapters (peft) and save only them as model/."""
    lora_alpha: int | None = None
    """LoRA scale: the update is alpha / rank * B A; None: 2 x lora_rank, the common choice."""
    lora_target_modules: str = ALL_LINEAR
    """Layers that get adapters: 'all-linear' (attention q/k/v/o and MLP gate/up/down, not the LM head) or
    comma-separated module names such as 'q_proj,v_proj'."""

    def __post_init__(self):
        check_lora_fields(self)
        PromptBudget(self.context, self.context_window, self.max_new_tokens)  # validates the three
        if self.missing_rationale not in MISSING_RATIONALE_POLICIES:
            raise ValueError(f"missing_rationale must be one of {MISSING_RATIONALE_POLICIES}, got {self.missing_rationale!r}")
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise ValueError(f"need epochs > 0 and learning_rate > 0, got {self.epochs} and {self.learning_rate}")
        if self.micro_batch_size < 1 or self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"micro_batch_size={self.micro_batch_size} must be >= 1 and divide batch_size={self.batch_size}"
            )
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if self.save_steps < 1:
            raise ValueError(f"save_steps must be >= 1, got {self.save_steps}")

    @property
    def budget(self) -> PromptBudget:
        return PromptBudget(self.context, self.context_window, self.max_new_tokens)


def sft_args(config: SFTRunConfig, run_dir: RunDir):
    from trl import SFTConfig

    return SFTConfig(
        **trainer_run_args(
            run_dir, seed=config.seed, max_steps=config.max_steps or -1, save_steps=config.save_steps, bf16=config.bf16
        ),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.batch_size // config.micro_batch_size,
        max_length=config.context_window,  # the prompt was cut to leave max_new_tokens for the answer
        completion_only_loss=True,  # loss on the assistant turn only
        packing=False,
        gradient_checkpointing=config.gradient_checkpointing,
    )


def run_sft(config: SFTRunConfig, *, resume: bool = False) -> dict[str, Any]:
    """Fine-tune into `config.out`; returns the run summary (also written to summary.json)."""
    import torch
    import transformers
    from trl import SFTTrainer

    from agents.models import load_model_and_tokenizer
    from shop_env.loaders import resolve_sessions

    run_dir = RunDir(config.out)
    start = run_dir.check_start(config, resume=resume)
    if start.finished is not None:
        return start.finished
    # the data before the model: a missing or malformed file fails in seconds, and leaves no config.json
    pairs = select_steps(resolve_sessions(config.sessions), max_examples=config.max_examples, seed=config.seed)
    run_dir.begin(config, start)
    transformers.set_seed(config.seed)
    model, tokenizer = load_model_and_tokenizer(config.model, dtype=torch.bfloat16 if config.bf16 else None)
    rows, missing = sft_rows(pairs, tokenizer, config.budget, missing_rationale=config.missing_rationale, skip_too_long=True)
    dataset = to_dataset([{"prompt": row["prompt"], "completion": row["completion"]} for row in rows])
    metrics, callbacks = run_callbacks(run_dir)
    trainer = SFTTrainer(
        model=model, args=sft_args(config, run_dir), train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks,
        peft_config=lora_config(config),
    )
    logger.info("SFT on %d examples (%d steps without a rationale: %s)", len(dataset), missing, config.missing_rationale)
    run_trainer(trainer, start)
    return finish_run(
        trainer, run_dir, metrics, stage="sft", examples=len(dataset), steps_without_rationale=missing,
        missing_rationale=config.missing_rationale,
        too_long=len(pairs) - len(rows) - (missing if config.missing_rationale == "skip" else 0),
    )
