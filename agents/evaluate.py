"""`shop-r1 eval`: a policy replayed over recorded sessions, scored as in the paper's Tables 2 and 3.

    shop-r1 eval --policy smollm2 --sessions bundled:test --limit 40 --context-window 2048 --max-new-tokens 96 --out runs/eval
    shop-r1 eval --policy heuristic --sessions bundled:test --out runs/eval-heuristic
    shop-r1 eval --policy Qwen/Qwen2.5-3B-Instruct --context-window 32768 --temperatures 0.6,0.7,0.8,0.9,1.0,1.1,1.2 --out runs/sweep

Every step of every session is predicted teacher-forced (the human's next page follows whatever the
policy said), through the replay env `ShopR1/SessionReplay-v0`, so the reward breakdowns are the
env's own. An LLM policy answers a batch of observations at once, laid out in one of two ways:
- A policy that does not read `last_action_error` (`uses_last_action_error = False`, as every built-in
  one) knows each observation before the step ahead of it is scored, so a batch holds the next steps in
  order, several from one session: a 16-step demo over 5 sessions is 2 batches of 8, not 6 of 1-5.
- Any other policy gets several sessions advanced in lockstep, one env each, so each env's observation
  (including `last_action_error` from that session's previous response) is exactly what stepping it
  alone would give.

Outputs in `--out`:
- `metrics.json`: exact_acc, type_acc, type_macro_f1, per_type, confusion, counts (fractions in [0, 1]),
  mean reward components (`reward/...`, self-certainty included), token statistics and the run settings.
- `predictions.jsonl`: every step: session, step, response text, parsed action, gold action, reward.
- `report.md`: the paper's Table 2 (overall) and Table 3 (per action type) layout, in percent, with
  95% bootstrap intervals; `confusion.png` (gold type x predicted type) and `per_type.png` (exact and
  type accuracy per gold type, with intervals).
With `--temperatures`, one such directory per temperature (`T0.6/`, ...) plus `sweep.json`,
`report.md` and `temperature_sweep.png` (the paper's Figure 2) at the top.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_env.atomic_io import append_jsonl, atomic_write, read_jsonl_records, write_json, write_text
from shop_env.preflight import config_changes
from shop_env.metrics import bootstrap_intervals, evaluate, percent
from shop_env.rewards import RewardConfig
from shop_env.session import ACTION_TYPES, Session

from agents.context_builder import PromptBudget
from agents.eval_plots import plot_confusion, plot_per_type, plot_temperature_sweep
from agents.models import WEIGHT_FORMATS, training_prompts
from agents.make_policy import API_PREFIX, BASELINES, make_policy
from agents.policies import Policy, PolicyOutput

CPU_CONTEXT_WINDOW = 2048
"""Default prompt + response budget of the CLI: a 135M-model forward over 2k tokens takes ~6 s on 2 CPU
cores (8k: ~37 s). The paper's 32768 is for GPUs: pass --context-window 32768."""

CPU_DEMO = {
    "policy": "smollm2", "sessions": "bundled:test", "context": "latest", "limit": 24, "context_window": 1024,
    "max_new_tokens": 96, "weights": "fp32-packed", "decoder": "fast", "batch_size": 24, "generation_batch_size": 24,
}
"""EvalConfig fields of the README's main job (agents/demo.py): the first 24 steps of the bundled test
sessions with the prompts the shipped policies were trained on (latest-step context, a 1,024-token
window, 96 response tokens; experiments/cpu_smollm2/), offline on a CPU, with the fast decoder and
fp32-packed weights (benchmarks/eval_throughput.py times them against the float32 `generate` path they
replaced), all 24 steps decoded as one batch: a decode step streams the weights once for every row.
Not int8: it changes SmolLM2's greedy answers on nearly every step (see agents.models.WEIGHT_FORMATS).
`EvalConfig(**CPU_DEMO, out=...)`."""


@dataclass(frozen=True)
class EvalConfig:
    """One `shop-r1 eval` run."""

    policy: str = "smollm2"
    """oracle, terminate, random, heuristic, smollm2, tiny-random, an HF model id or a local model path."""
    sessions: str = "bundled:test"
    """Sessions to replay: bundled:test / bundled:train, or a file or directory `load_sessions` reads."""
    out: Path = Path("runs/eval")
    """Directory for metrics.json, predictions.jsonl, report.md (created; existing files are replaced)."""
    context: str | None = None
    """whole (past pages + past actions) or latest (past actions + current page), paper Table 5. None: the
    one a shipped policy was trained with (`agents.models.training_prompts`), else whole."""
    temperature: float = 0.6
    """Sampling temperature (paper: 0.6); also the scale of the self-certainty logits."""
    temperatures: tuple[float, ...] | None = None
    """Run the paper's sweep (Figure 2) over these temperatures instead of `temperature`."""
    greedy: bool = False
    """Greedy decoding instead of sampling (deterministic)."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    limit: int | None = None
    """Evaluate only the first N steps, taking sessions in order (the last one may stop early)."""
    context_window: int | None = None
    """Prompt + response token budget; the context builder drops the oldest pages first to fit. None: a
    shipped policy's training budget, else CPU_CONTEXT_WINDOW."""
    max_new_tokens: int | None = None
    """Most tokens per response (a rationale + action is ~40-100). None: a shipped policy's, else 256."""
    batch_size: int = 8
    """Sessions advanced in lockstep: the observations handed to the policy at once."""
    generation_batch_size: int | None = None
    """Rows an LLM policy decodes together; None: the policy's default (8; 1 for `generate` on a CPU)."""
    decoder: str = "fast"
    """fast (per-prompt prefill with prefix reuse, batched decode) or generate (transformers' generate)."""
    weights: str = "fp32-packed"
    """Weight format of a named LLM (`agents.models.WEIGHT_FORMATS`): fp32-packed (float32 in oneDNN's GEMM
    layout, the CPU default), fp32, or int8 (lossy; 4x fewer bytes per decode step)."""
    draw: str = "inverse_cdf"
    """How the fast decoder draws sampled tokens: inverse_cdf, or multinomial (generate's draws)."""
    seed: int = 0
    """Seeds sampling and the random baseline."""
    self_certainty: bool = True
    """Compute the rationale's self-certainty (LLM policies on the transformers backend)."""
    backend: str = "hf"
    """hf (transformers, CPU or GPU) or vllm (GPU, optional package)."""
    constrained: bool = False
    """Force each response into the format's JSON Schema, `name` restricted to the page's elements
    (agents/constrained.py): llguidance on the transformers backend, structured outputs on vLLM,
    `response_format` for `openai:` policies."""
    base_url: str | None = None
    """The OpenAI-compatible server of an `openai:MODEL` policy (default: the OpenAI API)."""
    max_concurrency: int = 4
    """Requests in flight at once for an `openai:` policy."""
    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    """Reward weights for the reward columns (paper defaults)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self):
        trained = training_prompts(self.policy) or {}
        for key, default in (("context", "whole"), ("context_window", CPU_CONTEXT_WINDOW), ("max_new_tokens", 256)):
            if getattr(self, key) is None:  # frozen: filled in once, here
                object.__setattr__(self, key, trained.get(key, default))
        PromptBudget(self.context, self.context_window, self.max_new_tokens)  # validates the three
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 step (or None for all), got {self.limit}")
        if self.temperatures is not None:
            if not self.temperatures or any(not (t > 0 and math.isfinite(t)) for t in self.temperatures):
                raise ValueError(f"temperatures must be a non-empty list of numbers > 0, got {self.temperatures}")
            if len(set(self.temperatures)) != len(self.temperatures):
                raise ValueError(f"temperatures repeat a value: {self.temperatures}")
            if self.policy in BASELINES:
                raise ValueError(f"a temperature sweep needs an LLM policy; {self.policy!r} does not sample")
            if self.greedy:
                raise ValueError("a temperature sweep samples; drop --greedy")
        if self.policy.startswith(API_PREFIX):
            if self.backend != "hf" or self.weights != EvalConfig.weights or self.decoder != "fast" or self.draw != EvalConfig.draw:
                raise ValueError("--backend, --weights, --decoder and --draw choose how a local model runs; an openai: policy runs on its server")
        elif self.base_url is not None:
            raise ValueError(f"--base-url is the server of an openai:MODEL policy; {self.policy!r} runs here")
        if self.constrained and self.policy in BASELINES:
            raise ValueError(f"--constrained guides an LLM's decoding; {self.policy!r} does not decode")
        if self.backend not in ("hf", "vllm"):
            raise ValueError(f"backend must be 'hf' or 'vllm', got {self.backend!r}")
        if self.weights not in WEIGHT_FORMATS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHT_FORMATS)}, got {self.weights!r}")
        if self.backend != "hf" and (self.weights != EvalConfig.weights or self.decoder != "fast" or self.draw != EvalConfig.draw):
            raise ValueError("--weights, --decoder and --draw choose how the transformers backend runs; vLLM has its own")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.generation_batch_size is not None and self.generation_batch_size < 1:
            raise ValueError(f"generation_batch_size must be >= 1 or None (auto), got {self.generation_batch_size}")

    def generation_kwargs(self, temperature: float | None = None) -> dict[str, Any]:
        """What `make_policy` gets: the LLM settings (baselines use only the seed)."""
        kwargs: dict[str, Any] = {
            "temperature": self.temperature if temperature is None else temperature,
            "top_p": self.top_p,
            "greedy": self.greedy,
            "context_window": self.context_window,
            "max_new_tokens": self.max_new_tokens,
            "context": self.context,
            "seed": self.seed,
            "constrained": self.constrained,
        }
        if self.policy.startswith(API_PREFIX):
            return {**kwargs, "base_url": self.base_url, "max_concurrency": self.max_concurrency}
        kwargs.update(batch_size=self.generation_batch_size, with_self_certainty=self.self_certainty and self.backend == "hf")
        if self.backend != "hf":
            kwargs["backend"] = self.backend
        else:
            kwargs.update(decoder=self.decoder, weights=self.weights, draw=self.draw)
        return kwargs


def _plan(sessions: Sequence[Session], limit: int | None) -> list[tuple[Session, int]]:
    """(session, steps to evaluate) in order, cut to `limit` steps in all."""
    plan = []
    remaining = math.inf if limit is None else limit
    for session in sessions:
        if remaining <= 0:
            break
        count = int(min(len(session), remaining))
        plan.append((session, count))
        remaining -= count
    return plan


def evaluate_policy(
    policy: Policy,
    sessions: str | Sequence[Session],
    *,
    context: str = "whole",
    limit: int | None = None,
    batch_size: int = 8,
    reward_config: RewardConfig | None = None,
    progress: bool = True,
    on_step: Callable[[dict], None] | None = None,
    answered: Mapping[tuple[str, int], dict] | None = None,
) -> dict[str, Any]:
    """Replay `sessions` with `policy`; returns {"metrics": ..., "predictions": [...]}.

    Each `policy.act` call gets up to `batch_size` observations: the next steps in order when the
    policy sets `uses_last_action_error = False`, else one step of each of `batch_size` sessions
    (see the module docstring). `on_step` sees each prediction record as it is made. Steps in
    `answered` (prediction records by (session_id, step), from an interrupted run) are not asked
    again: their recorded responses are scored by the env as they were.
    """
    import gymnasium as gym

    from shop_env import ENV_ID
    from shop_env.loaders import resolve_sessions

    loaded = list(resolve_sessions(sessions)) if isinstance(sessions, str) else list(sessions)
    plan = _plan(loaded, limit)
    if not plan:
        raise ValueError(f"no steps to evaluate in {sessions if isinstance(sessions, str) else f'{len(loaded)} sessions'}")
    config = reward_config or RewardConfig()
    planned_sessions = [session for session, _ in plan]
    total_steps = sum(count for _, count in plan)
    records: list[dict[str, Any]] = []
    idle_envs: list[gym.Env] = []

    def start(order: int) -> tuple[gym.Env, dict]:
        env = idle_envs.pop() if idle_envs else gym.make(ENV_ID, sessions=planned_sessions, context=context, reward_config=config)
        return env, env.reset(options={"index": order})[0]

    answered = answered or {}

    def act(observations: list[dict]) -> list[Any]:
        keys = [(observation["session_id"], int(observation["step_index"])) for observation in observations]
        outputs: list[Any] = [recorded_output(answered[key]) if key in answered else None for key in keys]
        asked = [index for index, output in enumerate(outputs) if output is None]
        if asked:
            fresh = policy.act([observations[index] for index in asked])
            if len(fresh) != len(asked):
                raise RuntimeError(f"{type(policy).__name__}.act returned {len(fresh)} outputs for {len(asked)} observations")
            for index, output in zip(asked, fresh):
                outputs[index] = output
        return outputs

    def score(env: gym.Env, order: int, output: Any) -> tuple[dict, bool]:
        """Step `env` with `output`, record it; returns the next observation and whether the session ended."""
        observation, reward, terminated, truncated, info = env.step(
            {"response": output.text, "self_certainty": output.self_certainty}
        )
        record = _record(order, info, output, reward)
        records.append(record)
        if on_step is not None:
            on_step(record)
        return observation, terminated or truncated

    started = time.perf_counter()
    with _progress_bar(progress, total_steps) as advance:
        if getattr(policy, "uses_last_action_error", True):
            _lockstep(plan, batch_size, start, act, score, idle_envs, lambda n: advance(n, records))
        else:
            _in_step_order(plan, batch_size, context, start, act, score, idle_envs, lambda n: advance(n, records))
    for env in idle_envs:
        env.close()
    seconds = time.perf_counter() - started
    records.sort(key=lambda record: (record.pop("_order"), record["step"]))
    metrics = summarize(records, config, seconds=seconds)
    metrics["resumed_steps"] = resumed = sum(1 for record in records if (record["session_id"], record["step"]) in answered)
    if resumed and seconds > 0:  # the rate of the steps asked in this run
        metrics["steps_per_second"] = round((len(records) - resumed) / seconds, 3)
    return {"metrics": metrics, "predictions": records}


def recorded_output(record: Mapping[str, Any]) -> PolicyOutput:
    """The policy output a prediction record holds, as the policy gave it."""
    from agents.context_builder import Dropped

    dropped = None if record["dropped_pages"] is None else Dropped(record["dropped_pages"], record["dropped_page_chars"])
    return PolicyOutput.from_text(
        record["text"], self_certainty=record["self_certainty"], prompt_tokens=record["prompt_tokens"],
        completion_tokens=record["completion_tokens"], dropped=dropped, error=record["policy_error"],
    )


def _lockstep(plan, batch_size, start, act, score, idle_envs, advance) -> None:
    """`batch_size` sessions at a time, one step each per batch: each env's feedback reaches its policy."""
    active: list[dict[str, Any]] = []  # {"env", "observation", "order", "left"}
    queue = list(enumerate(plan))[::-1]
    while active or queue:
        while len(active) < batch_size and queue:
            order, (_, count) = queue.pop()
            env, observation = start(order)
            active.append({"env": env, "observation": observation, "order": order, "left": count})
        outputs = act([slot["observation"] for slot in active])
        still_active = []
        for slot, output in zip(active, outputs, strict=True):
            slot["observation"], ended = score(slot["env"], slot["order"], output)
            slot["left"] -= 1
            if ended or slot["left"] == 0:
                idle_envs.append(slot["env"])
            else:
                still_active.append(slot)
        active = still_active
        advance(len(outputs))


def _in_step_order(plan, batch_size, context, start, act, score, idle_envs, advance) -> None:
    """Every planned step in order, `batch_size` per batch, observations built ahead (`observation_at`);
    each session's env then scores its steps in order, so rewards and records are the env's own."""
    from shop_env.replay_env import observation_at

    steps = [(order, session, index) for order, (session, count) in enumerate(plan) for index in range(count)]
    envs: dict[int, Any] = {}
    for begin in range(0, len(steps), batch_size):
        chunk = steps[begin : begin + batch_size]
        outputs = act([observation_at(session, index, context) for _, session, index in chunk])
        for (order, _, index), output in zip(chunk, outputs, strict=True):
            if index == 0:
                envs[order] = start(order)[0]
            score(envs[order], order, output)
            if index == plan[order][1] - 1:
                idle_envs.append(envs.pop(order))
        advance(len(outputs))


def _record(order: int, info: dict[str, Any], output: Any, reward: float) -> dict[str, Any]:
    dropped = output.dropped
    return {
        "_order": order,
        "session_id": info["session_id"],
        "step": int(info["step_index"]),
        "text": output.text,
        "action": None if info["predicted_action"] is None else info["predicted_action"].to_dict(),
        "gold": info["gold_action"].to_dict(),
        "parse_error": info["parse_error"],
        "reward": reward,
        "reward_components": info["reward"].as_dict(),
        "self_certainty": output.self_certainty,
        "prompt_tokens": output.prompt_tokens,
        "completion_tokens": output.completion_tokens,
        "dropped_pages": dropped.pages if dropped is not None else None,
        "dropped_page_chars": dropped.page_chars if dropped is not None else None,
        "policy_error": output.error,
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(records: list[dict[str, Any]], config: RewardConfig, *, seconds: float | None = None) -> dict[str, Any]:
    """The paper's metrics with 95% bootstrap intervals (`ci95`), mean reward components and token
    statistics over prediction records."""
    predicted, gold = [r["action"] for r in records], [r["gold"] for r in records]
    metrics = evaluate(predicted, gold, rouge_threshold=config.rouge_threshold)
    metrics["ci95"] = bootstrap_intervals(predicted, gold, rouge_threshold=config.rouge_threshold)
    component_keys = sorted({key for r in records for key in r["reward_components"]})
    metrics["reward"] = {key: _mean([float(r["reward_components"].get(key) or 0.0) for r in records]) for key in component_keys}
    certainties = [r["self_certainty"] for r in records if r["self_certainty"] is not None]
    metrics["self_certainty"] = {"mean": _mean(certainties), "count": len(certainties)}
    metrics["format_ok"] = 1 - metrics["counts"]["invalid"] / len(records)
    prompt_tokens = [r["prompt_tokens"] for r in records if r["prompt_tokens"] is not None]
    completion_tokens = [r["completion_tokens"] for r in records if r["completion_tokens"] is not None]
    metrics["tokens"] = {
        "prompt_mean": _mean(prompt_tokens),
        "prompt_max": max(prompt_tokens, default=None),
        "completion_mean": _mean(completion_tokens),
        "prompt_total": sum(prompt_tokens),
        "completion_total": sum(completion_tokens),
        "steps_with_dropped_pages": sum(1 for r in records if r["dropped_pages"]),
        "steps_with_cut_page": sum(1 for r in records if r["dropped_page_chars"]),
        "steps_over_budget": sum(1 for r in records if r.get("policy_error")),
    }
    metrics["n_steps"] = len(records)
    metrics["n_sessions"] = len({r["session_id"] for r in records})
    if seconds is not None:
        metrics["seconds"] = round(seconds, 2)
        metrics["steps_per_second"] = round(len(records) / seconds, 3) if seconds > 0 else None
    return metrics


class _progress_bar:
    """A rich progress bar over steps showing the running action type accuracy (or nothing at all)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total
        self.type_hits = 0
        self.counted = 0

    def __enter__(self) -> Callable[[int, list[dict]], None]:
        if not self.enabled:
            return lambda steps, records: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]eval[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
            TimeElapsedColumn(), TimeRemainingColumn(),
        )
        self.progress.__enter__()
        task = self.progress.add_task("", total=self.total)

        def advance(steps: int, records: list[dict]) -> None:
            for record in records[self.counted :]:
                self.type_hits += record["action"] is not None and record["action"]["type"] == record["gold"]["type"]
            self.counted = len(records)
            self.progress.update(task, advance=steps, description=f"type acc {self.type_hits / self.counted:.0%}")

        return advance

    def __exit__(self, *exc_info) -> None:
        if self.enabled:
            self.progress.__exit__(*exc_info)


def write_predictions(path: Path, records: list[dict[str, Any]]) -> None:
    with atomic_write(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def interval(metrics: dict[str, Any], key: str) -> str:
    """The 95% interval of a rate in percent, "[22.10, 33.50]" ("[-]" when the metrics carry none)."""
    span = metrics.get("ci95", {}).get(key)
    return f"[{100 * span[0]:.2f}, {100 * span[1]:.2f}]" if span else "[-]"


def report_markdown(metrics: dict[str, Any], *, label: str, settings: str) -> str:
    """report.md: Table 2 (overall) and Table 3 (per action type) layout, then rewards and counts."""
    per_type = metrics["per_type"]
    types = [kind for kind in ACTION_TYPES if kind in per_type]
    lines = [
        f"# Evaluation: {label}",
        "",
        f"{metrics['n_steps']} steps of {metrics['n_sessions']} sessions · {settings}",
        "",
        "## Overall (paper Table 2 layout)",
        "",
        "| Model | Settings | Exact Action Acc. | Action Type Acc. | Action Type F1 |",
        "|---|---|---:|---:|---:|",
        f"| {label} | {settings} | {percent(metrics['exact_acc'])} | {percent(metrics['type_acc'])} | {percent(metrics['type_macro_f1'])} |",
        "",
        "95% bootstrap intervals over the steps (`shop_env.metrics.bootstrap_intervals`): exact "
        + ", type ".join(interval(metrics, key) for key in ("exact_acc", "type_acc"))
        + f", type F1 {interval(metrics, 'type_macro_f1')}.",
        "",
        "## Per action type (paper Table 3 layout)",
        "",
        "| Model | Settings | " + " | ".join(f"Exact {kind}" for kind in types) + " | " + " | ".join(f"Type {kind}" for kind in types) + " |",
        "|---|---|" + "---:|" * (2 * len(types)),
        f"| {label} | {settings} | "
        + " | ".join(percent(per_type[kind]["exact_acc"]) for kind in types)
        + " | "
        + " | ".join(percent(per_type[kind]["type_acc"]) for kind in types)
        + " |",
        "",
        "Support (gold steps per type): " + ", ".join(f"{kind} {per_type[kind]['support']}" for kind in types) + ".",
        "",
        "## Mean reward per step",
        "",
        "| component | mean |",
        "|---|---:|",
    ]
    lines += [f"| {key} | {value:.4g} |" for key, value in metrics["reward"].items() if value is not None]
    certainty = metrics["self_certainty"]
    if certainty.get("absent_because"):
        certainty_line = f"Self-certainty of the rationale: not computed ({certainty['absent_because']})."
    else:
        mean_certainty = "-" if certainty["mean"] is None else f"{certainty['mean']:.3f} nats"
        certainty_line = f"Self-certainty of the rationale: {mean_certainty} (over {certainty['count']} responses with a rationale)."
        if metrics.get("run", {}).get("constrained"):
            certainty_line += (" Under --constrained it is computed from the model's unconstrained next-token "
                               "distribution at the tokens the grammar let through.")
    lines += [
        "",
        certainty_line,
        f"Responses in the right format: {percent(metrics['format_ok'])}.",
        "",
        "## Confusion (rows: gold type, columns: predicted)",
        "",
        "![confusion](confusion.png) ![per type](per_type.png)",
        "",
        "| gold \\ predicted | " + " | ".join(metrics["confusion"][ACTION_TYPES[0]]) + " |",
        "|---|" + "---:|" * len(metrics["confusion"][ACTION_TYPES[0]]),
    ]
    lines += [f"| {gold} | " + " | ".join(str(n) for n in row.values()) + " |" for gold, row in metrics["confusion"].items()]
    tokens = metrics["tokens"]
    if tokens["prompt_mean"] is not None:
        lines += [
            "",
            "## Prompts",
            "",
            f"Mean prompt {tokens['prompt_mean']:.0f} tokens (max {tokens['prompt_max']}), mean response "
            f"{tokens['completion_mean']:.1f} tokens; {tokens['steps_with_dropped_pages']} steps dropped earlier pages "
            f"and {tokens['steps_with_cut_page']} cut the current page to fit the budget. "
            f"Token usage: {tokens['prompt_total']:,} prompt + {tokens['completion_total']:,} completion tokens.",
        ]
    if metrics.get("seconds") is not None:
        resumed = metrics.get("resumed_steps") or 0
        carried = f"; {resumed} steps carried over from the interrupted run, not asked again" if resumed else ""
        lines += ["", f"Wall time {metrics['seconds']:.1f} s ({metrics['steps_per_second']} steps/s){carried}."]
    return "\n".join(lines) + "\n"


def _settings_label(config: EvalConfig, temperature: float) -> str:
    decoding = "greedy" if config.greedy else f"T={temperature:g}" + (f", top-p {config.top_p:g}" if config.top_p < 1 else "")
    if config.policy in BASELINES:
        return f"context={config.context}"
    label = f"context={config.context}, {decoding}, budget {config.context_window} tokens ({config.max_new_tokens} for the response)"
    if config.policy.startswith(API_PREFIX):
        label += ", counted with the SmolLM2 tokenizer"
    return label + (", constrained to the format's JSON Schema" if config.constrained else "")


def _run_record(config: EvalConfig, temperature: float) -> dict[str, Any]:
    settings = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name not in ("reward", "progress", "temperatures", "out")
    }
    settings["temperature"] = temperature
    return {**settings, "reward_config": dataclasses.asdict(config.reward)}


OUTPUT_FILES = ("predictions.jsonl", "metrics.json", "report.md", "confusion.png", "per_type.png")
RUN_FILE = "eval_run.json"
"""The settings of the eval a directory holds, written first: `--resume` continues only the same eval."""


def _answered_steps(out: Path, run: dict[str, Any], resume: bool) -> dict[tuple[str, int], dict]:
    """Prediction records of an interrupted eval in `out` to keep (with `resume`), else a clean start.

    A fresh start removes the outputs of any earlier eval first, so none of them is shown as this one's.
    """
    predictions = out / "predictions.jsonl"
    if not resume:
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
        write_json(out / RUN_FILE, run)
        return {}
    if not (out / RUN_FILE).exists():
        if predictions.exists():
            raise ValueError(f"--resume: {out} has predictions but no {RUN_FILE} to say which eval made them; drop --resume to start over")
        write_json(out / RUN_FILE, run)
        return {}
    changes = config_changes(json.loads((out / RUN_FILE).read_text(encoding="utf-8")), run, may_change=("progress",))
    if changes:
        raise ValueError(f"--resume: {out} holds an eval with other settings ({'; '.join(changes)}); "
                         "drop --resume to start over, or pass another --out")
    records = read_jsonl_records(predictions)
    write_predictions(predictions, records)  # without a torn last line, so appends continue a clean file
    for name in OUTPUT_FILES[1:]:
        (out / name).unlink(missing_ok=True)
    return {(record["session_id"], record["step"]): record for record in records}


def _self_certainty_note(config: EvalConfig) -> str | None:
    """Why an eval has no self-certainty, for the report (None when it has one)."""
    if config.policy in BASELINES:
        return "a baseline has no model"
    if config.policy.startswith(API_PREFIX):
        return ("an API policy: chat-completions servers return at most 20 top log-probs per token, not the full "
                "next-token distribution that self-certainty KL(U || p) needs")
    if config.backend == "vllm":
        return "the vLLM backend returns sampled tokens' log-probs only, not the full distribution"
    if not config.self_certainty:
        return "turned off (--no-self-certainty)"
    return None


def _evaluate_into(policy: Policy, sessions: Sequence[Session], config: EvalConfig, out: Path, temperature: float,
                   resume: bool = False) -> dict[str, Any]:
    run = _run_record(config, temperature)
    out.mkdir(parents=True, exist_ok=True)
    answered = _answered_steps(out, run, resume)
    result = evaluate_policy(
        policy, sessions, context=config.context, limit=config.limit, batch_size=config.batch_size,
        reward_config=config.reward, progress=config.progress, answered=answered,
        on_step=lambda record: append_jsonl(out / "predictions.jsonl", {k: v for k, v in record.items() if k != "_order"}),
    )
    metrics = {**result["metrics"], "run": run}
    metrics["self_certainty"]["absent_because"] = _self_certainty_note(config)
    write_predictions(out / "predictions.jsonl", result["predictions"])
    write_json(out / "metrics.json", metrics)
    write_text(out / "report.md", report_markdown(metrics, label=config.policy, settings=_settings_label(config, temperature)))
    title = f"{config.policy}: {metrics['n_steps']} steps"
    plot_confusion(metrics, out / "confusion.png", title=title)
    plot_per_type(metrics, out / "per_type.png", title=title)
    return metrics


def run_eval(config: EvalConfig, resume: bool = False) -> dict[str, Any]:
    """Run `shop-r1 eval`: write the outputs into `config.out`; returns the metrics (or the sweep).

    Each step's prediction is appended to predictions.jsonl as it is scored; with `resume`, an
    interrupted eval of the same settings continues from there, asking no answered step again."""
    from shop_env.loaders import resolve_sessions
    from shop_env.preflight import writable_dir

    writable_dir(config.out)  # a read-only --out fails now, not after the whole evaluation
    sessions = list(resolve_sessions(config.sessions))
    first_temperature = config.temperatures[0] if config.temperatures else config.temperature
    policy = make_policy(config.policy, sessions=sessions, **config.generation_kwargs(first_temperature))
    if config.temperatures is None:
        return _evaluate_into(policy, sessions, config, Path(config.out), config.temperature, resume)
    rows = []
    for temperature in config.temperatures:
        tempered = policy.with_settings(temperature=temperature)
        metrics = _evaluate_into(tempered, sessions, config, Path(config.out) / f"T{temperature:g}", temperature, resume)
        rows.append(
            {
                "temperature": temperature,
                "exact_acc": metrics["exact_acc"],
                "type_acc": metrics["type_acc"],
                "type_macro_f1": metrics["type_macro_f1"],
                "reward_total": metrics["reward"].get("reward/total"),
                "self_certainty": metrics["self_certainty"]["mean"],
                "format_ok": metrics["format_ok"],
            }
        )
    sweep = {"policy": config.policy, "run": _run_record(config, first_temperature), "temperatures": rows}
    out = Path(config.out)
    write_json(out / "sweep.json", sweep)
    plot_temperature_sweep(rows, out / "temperature_sweep.png", title=f"{config.policy}: temperature sweep ({config.context} context)")
    write_text(out / "report.md", sweep_markdown(rows, label=config.policy, settings=_settings_label(config, first_temperature)))
    return sweep


def sweep_markdown(rows: list[dict[str, Any]], *, label: str, settings: str) -> str:
    """The sweep as a table (the numbers behind the paper's Figure 2) and the plot."""
    lines = [
        f"# Temperature sweep: {label}",
        "",
        f"{settings.split(', T=')[0]}. One directory per temperature holds its full report.",
        "",
        "| Temperature | Exact Action Acc. | Action Type Acc. | Action Type F1 | Mean reward | Self-certainty (nats) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        certainty = "-" if row["self_certainty"] is None else f"{row['self_certainty']:.3f}"
        reward = "-" if row["reward_total"] is None else f"{row['reward_total']:.4g}"
        lines.append(
            f"| {row['temperature']:g} | {percent(row['exact_acc'])} | {percent(row['type_acc'])} "
            f"| {percent(row['type_macro_f1'])} | {reward} | {certainty} |"
        )
    lines += ["", "![temperature sweep](temperature_sweep.png)", ""]
    return "\n".join(lines)
