"""Shop-R1 GRPO on one machine with TRL: the hybrid reward plus the rationale's self-certainty (paper Eq. 4).

    maximize  E[ v(action) + alpha * s(rationale) ] - beta * KL(pi || pi_ref)

v is `shop_env.rewards.score_response` (format + hierarchical DARS action reward, docs/contract.md, the reward); s is
the self-certainty KL(U || p) of the policy's own next-token distributions over the rationale tokens,
temperature-scaled like the sampler; alpha * s is added to the rule reward before TRL's group
normalization, and logged as its own component. Every sampled completion goes to the run's
completions.jsonl with its reward breakdown (the optimizer step it trains, the session step it answers),
and `--probe-sessions` scores a fixed held-out probe set every few steps (training/probe.py).

Run it (one command per recipe; `shop-r1 grpo --help` lists every flag):

    shop-r1 grpo --preset cpu --model runs/sft/model --out runs/grpo      # embedded SmolLM2 on a CPU
    shop-r1 grpo --preset paper --model runs/sft/model --out runs/grpo    # Qwen2.5-3B, 32k context, a GPU
    shop-r1 grpo --preset cpu --model runs/sft/model --baseline rl_binary  # SFT + RL (binary), Table 2
    shop-r1 grpo --preset cpu --model runs/sft/model --ablation no_dars    # a Table 4 row
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from trl import GRPOConfig, GRPOTrainer
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import split_tensor_dict

from agents.decoding import Sampling, check_supported

from shop_env.atomic_io import append_jsonl
from shop_env.response_format import parse_response
from shop_env.rewards import RewardConfig, score_response
from shop_env.self_certainty import rationale_mean, self_certainty
from agents.context_builder import PromptBudget
from training.data import rl_rows, select_steps, to_dataset
from training.lora import ALL_LINEAR, check_lora_fields, check_reference_policy, lora_config
from training.probe import Probe, ProbeCallback
from training.run_dir import RunDir, finish_run, run_callbacks, run_trainer, trainer_run_args
from training.shared_prefix import generate_completions, group_shuffle, shared_prefix_logps

logger = logging.getLogger(__name__)


@dataclass
class GRPORunConfig:
    """One Shop-R1 GRPO run. Defaults are the paper's (docs/contract.md, the paper's training setup); presets override a few fields."""

    model: str = "Qwen/Qwen2.5-3B-Instruct"
    """Policy to start from: `smollm2`, `tiny-random`, an HF id or a local path (usually the SFT run's `model/`)."""
    sessions: str = "bundled:train"
    """Sessions to draw <context, action> pairs from: `bundled:train`, a file or directory `load_sessions` reads."""
    out: str = "runs/grpo"
    """Run directory: config.json, metrics.jsonl, tensorboard/, checkpoints/, model/, plots/."""
    seed: int = 0
    """Seeds the example subset, the data order, sampling and initialization."""
    context: str = "whole"
    """Prompt context: 'whole' (past pages + actions, the paper's default) or 'latest' (Table 5)."""
    context_window: int = 32_768
    """Context window, prompt + response (paper: 32k); prompts are cut to this minus max_new_tokens."""
    max_new_tokens: int = 256
    """Response length cap. Not given in the paper: a response is one JSON object with a one-sentence
    rationale (60-120 tokens with Qwen's tokenizer), so 256 leaves room without paying for rambling."""
    max_examples: int | None = None
    """Use a seeded subset of this many steps (None: every step of every session)."""
    max_steps: int = 500
    """Optimizer steps (paper: 500)."""
    learning_rate: float = 1e-7
    """Adam learning rate (paper: 1e-7)."""
    num_generations: int = 8
    """Group size G: completions sampled per prompt, normalized together. Not given in the paper; 8 is
    the common GRPO choice and keeps 8 prompts x 8 = 64 completions per step, the paper's global batch."""
    prompts_per_step: int = 8
    """Distinct prompts per optimizer step; completions per step = prompts_per_step * num_generations."""
    micro_batch_size: int = 1
    """Completions per forward/backward (paper: per-device batch 1); the rest is gradient accumulation."""
    temperature: float = 0.6
    """Sampling temperature of the rollouts, also applied to the logits self-certainty reads (paper: 0.6)."""
    beta: float = 0.001
    """KL penalty weight to the reference (initial) policy (paper: 0.001)."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """The hybrid reward: alpha (0.005), DARS factor (1000), ROUGE threshold (0.75), action reward, format."""
    save_steps: int = 50
    """Checkpoint every N optimizer steps (and at the end); `--resume` continues from the last one."""
    bf16: bool = False
    """Train in bfloat16 (GPUs with bf16 support); CPU runs stay in float32."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: needed for 32k prompts on one GPU, slower."""
    shared_prefix: bool = True
    """The G completions of a prompt share one forward of it in the rollout, the loss and the reference
    (training/shared_prefix.py): same log-probs, loss and gradients as TRL's plain path, which repeats
    the prompt G times. False runs TRL's plain path, for comparison. Sharing in the loss needs
    micro_batch_size to be a multiple of num_generations."""
    lora_rank: int = 0
    """0: train every weight. N > 0: train rank-N LoRA adapters (peft) and save only them as model/; the KL
    reference is then the start policy with the adapter disabled (no second model copy). LoRA usually
    wants a learning rate well above full fine-tuning's."""
    lora_alpha: int | None = None
    """LoRA scale: the update is alpha / rank * B A; None: 2 x lora_rank, the common choice."""
    lora_target_modules: str = ALL_LINEAR
    """Layers that get adapters: 'all-linear' (attention q/k/v/o and MLP gate/up/down, not the LM head) or
    comma-separated module names such as 'q_proj,v_proj'."""
    probe_sessions: str | None = None
    """Held-out sessions (e.g. bundled:test) scored every `probe_every` steps into probe.jsonl and
    plots/probe_accuracy.png (training/probe.py); None: no probe."""
    probe_limit: int = 24
    """Probe steps: the first N steps of `probe_sessions`, the same ones every time."""
    probe_every: int = 10
    """Optimizer steps between probes (and one before the first step and after the last)."""

    def __post_init__(self):
        check_lora_fields(self)
        if isinstance(self.reward, dict):
            self.reward = RewardConfig(**self.reward)
        PromptBudget(self.context, self.context_window, self.max_new_tokens)  # validates the three
        if self.num_generations < 2:
            raise ValueError(f"num_generations={self.num_generations}: GRPO needs a group of at least 2 completions")
        for name in ("max_steps", "prompts_per_step", "micro_batch_size", "save_steps", "probe_limit", "probe_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.completions_per_step % self.micro_batch_size:
            raise ValueError(
                f"micro_batch_size={self.micro_batch_size} must divide prompts_per_step * num_generations = "
                f"{self.completions_per_step}; pick a divisor such as {self.num_generations}"
            )
        if not 0 < self.temperature:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.learning_rate <= 0 or self.beta < 0:
            raise ValueError(f"need learning_rate > 0 and beta >= 0, got {self.learning_rate} and {self.beta}")

    @property
    def completions_per_step(self) -> int:
        return self.prompts_per_step * self.num_generations

    @property
    def budget(self) -> PromptBudget:
        return PromptBudget(self.context, self.context_window, self.max_new_tokens)


def completion_text(completion: Any) -> str:
    """The response string of a TRL completion: a chat turn list (conversational) or a plain string."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        return content if isinstance(content, str) else ""
    return ""


class ShopR1Reward:
    """The hybrid reward as a TRL reward function; every component is logged as `reward/<name>`.

    TRL calls it with the batch's prompts and completions and the dataset columns as keyword
    arguments (`gold_action`, and `self_certainty` when the trainer computed it). It returns
    `score_response(...).total` per completion, which already includes alpha * self-certainty, so TRL's
    group normalization sees the sum, as Eq. 4 asks.
    """

    __name__ = "shop_r1"

    def __init__(self, config: RewardConfig, completions_log: Path | None = None):
        self.config = config
        self.completions_log = completions_log
        """Append every scored completion here (the run's completions.jsonl); None: do not."""

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        gold_action: Sequence[str],
        self_certainty: Sequence[float | None] | None = None,
        log_metric: Any = None,
        trainer_state: Any = None,
        **kwargs: Any,
    ) -> list[float]:
        certainties = self_certainty if self_certainty is not None else [None] * len(completions)
        texts = [completion_text(completion) for completion in completions]
        breakdowns = [
            score_response(text, json.loads(gold), self.config, self_certainty=s)
            for text, gold, s in zip(texts, gold_action, certainties, strict=True)
        ]
        if log_metric is not None:
            for key in breakdowns[0].as_dict():
                log_metric(key, sum(b.as_dict()[key] for b in breakdowns) / len(breakdowns))
            log_metric("parse/ok_rate", sum(parse_response(text).ok for text in texts) / len(texts))
        if self.completions_log is not None:
            step = trainer_state.global_step + 1 if trainer_state is not None else None  # the step they train
            for index, (text, gold, breakdown) in enumerate(zip(texts, gold_action, breakdowns, strict=True)):
                append_jsonl(self.completions_log, {
                    "step": step,
                    "session_id": kwargs.get("session_id", [None] * len(texts))[index],
                    "step_index": kwargs.get("step_index", [None] * len(texts))[index],
                    "text": text,
                    "gold": json.loads(gold),
                    "parse_error": breakdown.error if breakdown.predicted_action is None else None,
                    "reward": breakdown.total,
                    "components": breakdown.as_dict(),
                })
        return [breakdown.total for breakdown in breakdowns]


class ShopR1GRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer plus the rationale's self-certainty, read from the rollout's own logits.

    Where the logits come from: TRL computes rewards right after generation, before any policy
    forward with gradients (the loss forward runs after the advantages exist, and its fused LM head
    never materializes the (B, T, V) logits anyway). The one place the policy's full next-token logits
    exist before the reward is generation itself: every decoding step projects the new position
    through the LM head. A forward hook on the LM head turns each step's logits (B, 1, V) into
    KL(U || p) per position with `shop_env.self_certainty` at the sampling temperature, so there is
    no extra forward pass and no (B, T, V) buffer. `_calculate_rewards` then averages them over each
    completion's rationale tokens and passes the result to the reward functions as `self_certainty`.

    With `certainty_weight == 0` (the no-rationale ablation, binary baselines) nothing is hooked.

    With `shared_prefix=True` (the default) the rollout, the loss and the reference pass run each
    prompt once per group (training/shared_prefix.py); the rollout then computes self-certainty in its
    own decoding loop, from the same per-step logits, instead of through the hook.
    """

    def __init__(self, *args: Any, certainty_weight: float = 0.0, shared_prefix: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.certainty_weight = certainty_weight
        self.shared_prefix = shared_prefix
        self._rollout_certainty: list[torch.Tensor] | None = None
        if shared_prefix:
            self._check_shared_prefix_support()
        if certainty_weight and self.use_vllm:
            raise ValueError(
                "self-certainty reads the policy's logits during transformers generation; vLLM does not expose "
                "them. Train with use_vllm=False, set alpha=0, or use the verl path (training/verl/)."
            )
        text_config = self.model.config.get_text_config()
        if certainty_weight and getattr(text_config, "final_logit_softcapping", None):
            raise ValueError(
                f"{text_config.model_type} soft-caps its logits after the LM head, which the self-certainty hook "
                "reads before the cap; use a model without final_logit_softcapping or alpha=0"
            )

    @contextmanager
    def _record_certainty_per_position(self) -> Iterator[list[torch.Tensor]]:
        """Collect KL(U || p) of each decoding step's next-token distribution, one (B,) tensor per step."""
        head = self.accelerator.unwrap_model(self.model).get_output_embeddings()
        steps: list[torch.Tensor] = []

        def hook(module, inputs, output):
            logits = output[:, -1:, :].float()  # (B, 1, V): the distribution the sampler draws this step from
            ones = torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device)  # (B, 1)
            steps.append(self_certainty(logits, ones, self.temperature))  # (B,)

        handle = head.register_forward_hook(hook)
        try:
            yield steps
        finally:
            handle.remove()

    def _check_shared_prefix_support(self) -> None:
        if self.use_vllm or self.use_transformers_continuous_batching or self.tools or self._is_vlm:
            raise ValueError(
                "shared-prefix GRPO runs text-only rollouts with transformers on this process; vLLM, continuous "
                "batching, tools and vision models need TRL's plain path (GRPORunConfig.shared_prefix=False)"
            )
        check_supported(self.accelerator.unwrap_model(self.model))
        config = self.generation_config
        if (config.repetition_penalty or 1.0) != 1.0 or (config.num_beams or 1) != 1:
            raise ValueError(
                f"shared-prefix rollouts sample with temperature, top-k, top-p and min-p only; got repetition_penalty="
                f"{config.repetition_penalty}, num_beams={config.num_beams}: unset them or use shared_prefix=False"
            )

    def _sampling(self) -> Sampling:
        config = self.generation_config
        return Sampling(
            max_new_tokens=self.max_completion_length,
            stop_ids=frozenset(self.eos_token_ids),
            pad_id=self._tokenizer.pad_token_id,
            temperature=self.temperature,
            greedy=not config.do_sample,
            top_k=config.top_k,
            top_p=config.top_p if config.top_p is not None else 1.0,
            min_p=config.min_p,
        )

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if self.shared_prefix:
            with (
                unwrap_model_for_generation(
                    self.model_wrapped, self.accelerator,
                    gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
                ) as model,
                torch.no_grad(),
            ):
                decoded = generate_completions(model, prompt_ids, self._sampling(), with_certainty=bool(self.certainty_weight))
            if self.certainty_weight:
                self._rollout_certainty = [row.certainty for row in decoded]
            return [row.token_ids for row in decoded], None
        if not self.certainty_weight:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        with self._record_certainty_per_position() as steps:
            completion_ids, logprobs = super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        per_position = torch.stack(steps, dim=1) if steps else torch.zeros(len(completion_ids), 0)  # (B, T)
        longest = max((len(ids) for ids in completion_ids), default=0)
        if per_position.shape != (len(completion_ids), longest):
            raise RuntimeError(
                f"the LM head ran {per_position.shape[1]} times for {len(completion_ids)} completions of up to "
                f"{longest} tokens; self-certainty needs one LM-head call per generated token (plain sampling, "
                "no speculative or assisted decoding)"
            )
        self._rollout_certainty = [per_position[i, : len(ids)].cpu() for i, ids in enumerate(completion_ids)]
        return completion_ids, logprobs

    def rationale_certainty(self, completion_ids: Sequence[Sequence[int]]) -> list[float | None]:
        """Mean KL(U || p) over each completion's rationale tokens; None when there is no rationale to score."""
        if self._rollout_certainty is None or len(self._rollout_certainty) != len(completion_ids):
            raise RuntimeError("no per-position self-certainty recorded for this batch of completions")
        return [
            rationale_mean(self.processing_class, ids, per_position)
            for ids, per_position in zip(completion_ids, self._rollout_certainty, strict=True)
        ]

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False,
        compute_aux_loss=False, **multimodal,
    ):
        if not self.shared_prefix or compute_aux_loss or any(value is not None for value in multimodal.values()):
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, compute_aux_loss, **multimodal
            )
        with self.accelerator.autocast():
            logps, entropies = shared_prefix_logps(model, input_ids, attention_mask, logits_to_keep, compute_entropy)
        return logps, entropies, None

    def _prepare_inputs(self, generation_batch):
        """TRL's, except that a generation batch is shuffled by whole groups, so micro-batches of a multiple
        of G completions hold whole groups and their prompt is computed once."""
        if not (self.shared_prefix and self.model.training):
            return super()._prepare_inputs(generation_batch)
        generate_every = self.args.steps_per_generation * self.num_iterations
        if self._step % generate_every == 0 or self._buffered_inputs is None:
            batch = group_shuffle(self._generate_and_score_completions(generation_batch), self.num_generations)
            self._buffered_inputs = split_tensor_dict(batch, self.args.steps_per_generation)
        return self._buffered_inputs[self._step % self.args.steps_per_generation]

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        if self.certainty_weight:
            for row, value in zip(inputs, self.rationale_certainty(completion_ids_list), strict=True):
                row["self_certainty"] = value
            self._rollout_certainty = None
        return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)


def grpo_args(config: GRPORunConfig, run_dir: RunDir) -> GRPOConfig:
    """TRL's GRPOConfig for a run: one generation batch (prompts_per_step x G completions) per optimizer step."""
    accumulation = config.completions_per_step // config.micro_batch_size
    return GRPOConfig(
        **trainer_run_args(run_dir, seed=config.seed, max_steps=config.max_steps, save_steps=config.save_steps, bf16=config.bf16),
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",  # verl's default, which the paper's runs used; TRL's default decays linearly
        warmup_steps=0,
        per_device_train_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=accumulation,
        generation_batch_size=config.completions_per_step,
        num_generations=config.num_generations,
        max_completion_length=config.max_new_tokens,
        temperature=config.temperature,
        beta=config.beta,
        gradient_checkpointing=config.gradient_checkpointing,
        remove_unused_columns=False,  # the reward reads gold_action; provenance columns stay for the logs
        log_completions=False,
    )


def check_gold_actions(dataset: Any) -> None:
    """Refuse a dataset whose `gold_action` column would fail inside an RL step; names the row and why."""
    from shop_env.session import Action, SessionFormatError

    if "gold_action" not in dataset.column_names:
        raise ValueError(f"the GRPO dataset needs a 'gold_action' column (JSON of the human's action); it has {dataset.column_names}")
    for index, gold in enumerate(dataset["gold_action"]):
        try:
            Action.from_dict(json.loads(gold))
        except (TypeError, ValueError, SessionFormatError) as err:
            raise ValueError(f"GRPO dataset row {index}: gold_action {str(gold)[:80]!r} is not a valid action ({err})") from None


def build_trainer(config: GRPORunConfig, run_dir: RunDir, model: Any, tokenizer: Any, dataset: Any, callbacks: list) -> ShopR1GRPOTrainer:
    """The Shop-R1 trainer for an already loaded policy and dataset (tests and the benchmark build it directly)."""
    check_gold_actions(dataset)
    return ShopR1GRPOTrainer(
        model=model,
        reward_funcs=[ShopR1Reward(config.reward, completions_log=run_dir.completions)],
        args=grpo_args(config, run_dir),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
        certainty_weight=config.reward.alpha,
        shared_prefix=config.shared_prefix,
        peft_config=lora_config(config),
    )


def run_grpo(config: GRPORunConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train with GRPO into `config.out`; returns the run summary (also written to summary.json)."""
    import transformers

    from agents.models import load_model_and_tokenizer
    from shop_env.loaders import resolve_sessions

    check_reference_policy(config.model, config.lora_rank, config.beta)
    run_dir = RunDir(config.out)
    start = run_dir.check_start(config, resume=resume)
    if start.finished is not None:
        return start.finished
    # the data before the model: a missing or malformed file fails in seconds, and leaves no config.json
    pairs = select_steps(resolve_sessions(config.sessions), max_examples=config.max_examples, seed=config.seed)
    probe_sessions = list(resolve_sessions(config.probe_sessions)) if config.probe_sessions is not None else None
    run_dir.begin(config, start)
    transformers.set_seed(config.seed)
    model, tokenizer = load_model_and_tokenizer(config.model, dtype=torch.bfloat16 if config.bf16 else None)
    dataset = to_dataset(rl_rows(pairs, tokenizer, config.budget, skip_too_long=True))
    metrics, callbacks = run_callbacks(run_dir)
    if probe_sessions is not None:
        probe = Probe(probe_sessions, config.probe_limit, config.probe_every, config.context, config.context_window,
                      config.max_new_tokens, config.temperature)
        callbacks.append(ProbeCallback(probe, tokenizer, run_dir.probe, run_dir.plots / "probe_accuracy.png"))
    trainer = build_trainer(config, run_dir, model, tokenizer, dataset, callbacks)
    logger.info("GRPO on %d <context, action> pairs from %s; resuming from %s", len(dataset), config.sessions, start.checkpoint)
    run_trainer(trainer, start)
    return finish_run(trainer, run_dir, metrics, stage="grpo", examples=len(dataset), too_long=len(pairs) - len(dataset))
