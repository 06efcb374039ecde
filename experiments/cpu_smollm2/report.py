"""Collect the CPU experiment's runs into results.json, one comparison plot and the tables in RESULTS.md.

    .venv/bin/python -m experiments.cpu_smollm2.report      (run.sh calls it at the end)

Reads runs/<name>/eval/metrics.json (the agent evaluator's output), runs/<name>/summary.json and
runs/<name>/metrics.jsonl (training), never the weights. A run that has not finished is listed as missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from shop_env.atomic_io import atomic_write, read_jsonl_records, write_json, write_text
from shop_env.session import ACTION_TYPES

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
ROWS = (
    ("Zero-shot prompting", "zero_shot"),
    ("SFT", "sft"),
    ("SFT + RL (Binary)", "grpo_binary"),
    ("Shop-R1 (SFT + GRPO, hybrid reward)", "grpo_shop_r1"),
)
"""The paper's Table 2 rows, in its order, and the run directory of each."""


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def collect() -> dict:
    """Every row scored on the test steps all finished evaluations share (their --limit may differ)."""
    from agents.evaluate import summarize
    from shop_env.rewards import RewardConfig

    predictions = {name: read_jsonl_records(RUNS / name / "eval" / "predictions.jsonl") for _, name in ROWS}
    finished = [records for records in predictions.values() if records]
    common = set.intersection(*({(r["session_id"], r["step"]) for r in records} for records in finished)) if finished else set()
    rows = []
    for label, name in ROWS:
        shared = [r for r in predictions[name] if (r["session_id"], r["step"]) in common]
        metrics = summarize(shared, RewardConfig()) if shared else None
        rows.append({"label": label, "run": name, "eval": metrics, "training": _load(RUNS / name / "summary.json")})
    return {"common_steps": sorted(common), "rows": rows}


def main_table(results: dict) -> str:
    lines = [
        "| Model | Method | Exact Action Acc. | Action Type Acc. | Action Type F1 | Format OK | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        metrics = row["eval"]
        if metrics is None:
            lines.append(f"| SmolLM2-135M-Instruct | {row['label']} | not finished | | | | |")
            continue
        lines.append(
            f"| SmolLM2-135M-Instruct | {row['label']} | {_pct(metrics['exact_acc'])} | {_pct(metrics['type_acc'])} | "
            f"{_pct(metrics['type_macro_f1'])} | {_pct(metrics.get('format_ok'))} | {metrics.get('n_steps')} |"
        )
    return "\n".join(lines)


def per_type_table(results: dict) -> str:
    header = "| Method | " + " | ".join(f"{kind} exact / type acc. (n)" for kind in ACTION_TYPES) + " |"
    lines = [header, "|---|" + "---|" * len(ACTION_TYPES)]
    for row in results["rows"]:
        metrics = row["eval"]
        if metrics is None:
            continue
        cells = []
        for kind in ACTION_TYPES:
            stats = metrics["per_type"].get(kind)
            cells.append("-" if stats is None else f"{_pct(stats['exact_acc'])} / {_pct(stats['type_acc'])} ({stats['support']})")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def training_table() -> str:
    lines = [
        "| Run | Steps | Examples | Train seconds | Loss, first -> last step | reward/total, first -> last | KL, last step |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("sft", "grpo_shop_r1", "grpo_binary"):
        summary = _load(RUNS / name / "summary.json")
        records = read_jsonl_records(RUNS / name / "metrics.jsonl")
        if summary is None or not records:
            lines.append(f"| {name} | not finished | | | | | |")
            continue
        first, last = records[0], records[-1]

        def span(key: str) -> str:
            if first.get(key) is None:
                return "-"
            return f"{first[key]:.4g} -> {last[key]:.4g}"

        kl = last.get("kl")
        lines.append(
            f"| {name} | {last['step']} | {summary.get('examples')} | {summary.get('train_runtime', 0):.0f} | "
            f"{span('loss')} | {span('reward/total')} | {'-' if kl is None else f'{kl:.3g}'} |"
        )
    return "\n".join(lines)


def plot_grpo(path: Path) -> Path | None:
    """reward/total, reward/format, reward/type and KL of both GRPO runs against step, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {name: read_jsonl_records(RUNS / name / "metrics.jsonl") for name in ("grpo_shop_r1", "grpo_binary")}
    if not any(runs.values()):
        return None
    keys = ("reward/total", "reward/format", "reward/type", "reward/self_certainty", "kl")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4))
    for ax, key in zip(axes, keys, strict=True):
        for name, records in runs.items():
            points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, label=name)
        ax.set_title(key)
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    results = collect()
    write_json(HERE / "results.json", results)
    plot = plot_grpo(HERE / "grpo_curves.png")
    text = "\n\n".join([
        "# CPU experiment results (generated by report.py)",
        f"## Table 2 layout: overall, the first {len(results['common_steps'])} steps of the bundled test sessions\n\n"
        + main_table(results),
        "## Table 3 layout: per gold action type\n\n" + per_type_table(results),
        "## Training\n\n" + training_table(),
        f"![GRPO curves]({plot.name})" if plot else "",
    ])
    write_text(HERE / "RESULTS.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()
