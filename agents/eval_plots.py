"""The evaluation's figures: where the predictions go (confusion heatmap), how each action type fares
(per-type bars with 95% bootstrap intervals) and the temperature sweep (the paper's Figure 2).

Every accuracy axis runs 0-100%, so figures of different runs can be compared by eye.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shop_env.atomic_io import write_figure
from shop_env.metrics import INVALID
from shop_env.session import ACTION_TYPES


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(metrics: dict[str, Any], path: Path, *, title: str) -> Path:
    """Rows: the human's action type; columns: the predicted type (or invalid); each cell the share of
    its row, with the count."""
    plt = _pyplot()
    confusion = metrics["confusion"]
    rows = [kind for kind in ACTION_TYPES if sum(confusion[kind].values())]
    columns = [*ACTION_TYPES, INVALID]
    counts = [[confusion[row][column] for column in columns] for row in rows]
    shares = [[count / max(sum(row), 1) for count in row] for row in counts]
    figure, axes = plt.subplots(figsize=(1.5 + 1.3 * len(columns), 1.2 + 0.8 * len(rows)))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for r, row in enumerate(counts):
        for c, count in enumerate(row):
            axes.text(c, r, f"{100 * shares[r][c]:.0f}%\n({count})", ha="center", va="center", fontsize=8,
                      color="white" if shares[r][c] > 0.6 else "black")
    axes.set_xticks(range(len(columns)), columns, fontsize=8)
    axes.set_yticks(range(len(rows)), rows, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("human (gold)")
    axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the row")
    return write_figure(figure, path)


def plot_per_type(metrics: dict[str, Any], path: Path, *, title: str) -> Path:
    """Exact and type accuracy per gold action type, with the 95% bootstrap interval of each bar."""
    plt = _pyplot()
    per_type, intervals = metrics["per_type"], metrics.get("ci95", {}).get("per_type", {})
    kinds = [kind for kind in ACTION_TYPES if kind in per_type]
    figure, axes = plt.subplots(figsize=(1.8 + 1.6 * len(kinds), 3.6))
    width = 0.38
    for offset, (key, label) in zip((-width / 2, width / 2), (("exact_acc", "exact action"), ("type_acc", "action type"))):
        values = [100 * per_type[kind][key] for kind in kinds]
        spans = [intervals.get(kind, {}).get(key) for kind in kinds]
        errors = [[v - 100 * s[0] if s else 0 for v, s in zip(values, spans)], [100 * s[1] - v if s else 0 for v, s in zip(values, spans)]]
        axes.bar([i + offset for i in range(len(kinds))], values, width, yerr=errors, capsize=3, label=label)
    axes.set_xticks(range(len(kinds)), [f"{kind}\n(n={per_type[kind]['support']})" for kind in kinds], fontsize=8)
    axes.set_ylim(0, 100)
    axes.set_ylabel("accuracy, %")
    axes.set_title(title, fontsize=9)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return write_figure(figure, path)


def plot_temperature_sweep(rows: list[dict[str, Any]], path: Path, *, title: str) -> Path:
    """Exact / type accuracy and type F1 (%) against the sampling temperature, like the paper's Figure 2."""
    plt = _pyplot()
    temperatures = [row["temperature"] for row in rows]
    figure, axes = plt.subplots(figsize=(6, 4))
    for key, label, marker in (
        ("exact_acc", "Exact action acc.", "o"),
        ("type_acc", "Action type acc.", "s"),
        ("type_macro_f1", "Action type F1", "^"),
    ):
        axes.plot(temperatures, [100 * row[key] for row in rows], marker=marker, label=label)
    axes.set_ylim(0, 100)
    axes.set_xlabel("sampling temperature")
    axes.set_ylabel("%")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    return write_figure(figure, path)
