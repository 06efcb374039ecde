"""A fixed probe set scored during training, so accuracy can be read over optimizer steps, not only at the end.

Every `every` optimizer steps (and before the first and after the last) the policy being trained answers
the first `limit` steps of held-out sessions through the agent evaluator (`agents.evaluate`), with the
prompts, window and sampling temperature of its training run and a fixed seed, and one line goes to
`<out>/probe.jsonl`: `step`, exact_acc, type_acc, type_macro_f1, format_ok, the mean reward and n.
`<out>/plots/probe_accuracy.png` draws exact and type accuracy against step on a 0-100% axis.

The same steps are probed each time, so a curve moves only with the weights (and sampling noise: the
seed is fixed, the answers change when the weights do). Probing costs one evaluation of `limit` steps
each time; on a CPU, about as long as a few GRPO steps for 24 probe steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from shop_env.atomic_io import append_jsonl, read_jsonl_records, write_figure

PROBE_FILE = "probe.jsonl"
PROBE_METRICS = ("exact_acc", "type_acc", "type_macro_f1", "format_ok")


@dataclass(frozen=True)
class Probe:
    """What a probe scores and how the policy answers it."""

    sessions: list
    """The held-out sessions (loaded once)."""
    limit: int
    """The first N steps of them."""
    every: int
    """Probe after every N optimizer steps."""
    context: str
    context_window: int
    max_new_tokens: int
    temperature: float
    seed: int = 0


class ProbeCallback(TrainerCallback):
    """Score the probe set with the trainer's current model and append one probe.jsonl line per probe."""

    def __init__(self, probe: Probe, tokenizer: Any, path: Path, plot: Path):
        self.probe = probe
        self.tokenizer = tokenizer
        self.path = path
        self.plot = plot

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        done = {record["step"] for record in read_jsonl_records(self.path)}
        if state.is_world_process_zero and state.global_step not in done:
            self._score(model, state.global_step)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if state.is_world_process_zero and (step % self.probe.every == 0 or step == state.max_steps):
            self._score(model, step)

    def _score(self, model: Any, step: int) -> None:
        from agents.evaluate import evaluate_policy
        from agents.hf_policy import HFPolicy

        probe = self.probe
        policy = HFPolicy(
            model, self.tokenizer, context_window=probe.context_window, max_new_tokens=probe.max_new_tokens,
            temperature=probe.temperature, seed=probe.seed, with_self_certainty=False,
        )
        was_training = model.training
        model.eval()
        try:
            result = evaluate_policy(policy, probe.sessions, context=probe.context, limit=probe.limit, progress=False)
        finally:
            model.train(was_training)
        metrics = result["metrics"]
        record = {"step": int(step), **{name: metrics[name] for name in PROBE_METRICS},
                  "reward": metrics["reward"].get("reward/total"), "n": metrics["n_steps"]}
        append_jsonl(self.path, record)
        plot_probe(self.path, self.plot)


def plot_probe(path: Path, plot: Path) -> Path | None:
    """Exact and type accuracy of every probe against step, 0-100%; None before the first probe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = sorted(read_jsonl_records(path), key=lambda record: record["step"])
    if not records:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    steps = [record["step"] for record in records]
    for name, label in (("exact_acc", "exact action accuracy"), ("type_acc", "action type accuracy")):
        ax.plot(steps, [100 * record[name] for record in records], marker="o", markersize=4, label=label)
    ax.set_ylim(0, 100)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("% of probe steps")
    ax.set_title(f"probe set ({records[-1]['n']} held-out steps)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return write_figure(fig, plot)
