"""`shop-r1 compare`: the paper's Tables 2, 3 and 4 from any set of evaluations, on the steps they share.

    shop-r1 compare "Zero-shot=runs/zero_shot" "SFT=runs/sft/eval" runs/shop_r1 --out runs/compare

Each argument is an eval directory (`predictions.jsonl` from `shop-r1 eval`), or a run directory whose
`eval/` holds one (`shop-r1 train`), optionally prefixed by `LABEL=`. Every row is re-scored from its
predictions on the (session, step) pairs all rows share, so rows evaluated with different `--limit`s
still compare like for like. Written to `--out`:

- `compare.md`: overall (Table 2 layout; Table 4 uses the same columns for ablations) with 95% bootstrap
  intervals, per gold action type (Table 3), and the behaviour behind the paper's reward-hacking
  argument: the share of each predicted type (terminate rate included) and the mean reward of the
  same responses under the Shop-R1 reward with DARS and without it (dars_factor 1).
- `compare.json`: the same numbers; `compare.png`: exact and type accuracy per row with intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_env.atomic_io import read_jsonl_records, write_figure, write_json, write_text
from shop_env.metrics import INVALID, percent
from shop_env.rewards import RewardConfig, score_response
from shop_env.session import ACTION_TYPES

from agents.evaluate import interval, summarize

PREDICTIONS = "predictions.jsonl"


@dataclass(frozen=True)
class Row:
    label: str
    source: Path
    """The predictions.jsonl the row was read from."""
    records: list[dict[str, Any]]


def find_predictions(directory: Path) -> Path:
    """`directory/predictions.jsonl`, else `directory/eval/predictions.jsonl`; says what it looked for."""
    for candidate in (directory / PREDICTIONS, directory / "eval" / PREDICTIONS):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{directory}: no {PREDICTIONS} here or in eval/; pass a `shop-r1 eval --out` directory or a `shop-r1 train` run"
    )


def load_rows(arguments: list[str]) -> list[Row]:
    """One row per `[LABEL=]DIR` argument; the label defaults to the directory's name."""
    if not arguments:
        raise ValueError("nothing to compare: pass one or more eval or run directories")
    rows = []
    for argument in arguments:
        split = "=" in argument and not Path(argument).exists()
        label, _, path = argument.partition("=") if split else ("", "", argument)
        directory = Path(path)
        source = find_predictions(directory)
        records = read_jsonl_records(source)
        if not records:
            raise ValueError(f"{source} holds no predictions")
        rows.append(Row(label or (directory.name if directory.name != "eval" else directory.parent.name), source, records))
    labels = [row.label for row in rows]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two rows share a label ({labels}); give each a LABEL=DIR")
    return rows


def _key(record: dict[str, Any]) -> tuple[str, int]:
    return record["session_id"], int(record["step"])


def behaviour(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Predicted type shares and the mean reward of the same responses with and without DARS."""
    counts = dict.fromkeys((*ACTION_TYPES, INVALID), 0)
    for record in records:
        counts[INVALID if record["action"] is None else record["action"]["type"]] += 1
    rewards = {}
    for name, config in (("with_dars", RewardConfig()), ("without_dars", RewardConfig.ablation("no_dars"))):
        totals = [score_response(r["text"], r["gold"], config, self_certainty=r.get("self_certainty")).total for r in records]
        rewards[name] = sum(totals) / len(totals)
    return {"predicted_share": {kind: count / len(records) for kind, count in counts.items()},
            "terminate_rate": counts["terminate"] / len(records), "mean_reward": rewards}


def compare(rows: list[Row]) -> dict[str, Any]:
    """Every row's metrics (with intervals) and behaviour on the steps all rows share."""
    shared = set.intersection(*({_key(r) for r in row.records} for row in rows))
    if not shared:
        raise ValueError("the rows share no (session, step): evaluate them on the same sessions")
    results = []
    for row in rows:
        kept = sorted((r for r in row.records if _key(r) in shared), key=_key)
        results.append({
            "label": row.label, "source": str(row.source), "steps_in_source": len(row.records),
            "metrics": summarize(kept, RewardConfig()), "behaviour": behaviour(kept),
        })
    return {"n_steps": len(shared), "n_sessions": len({session for session, _ in shared}), "rows": results}


def compare_markdown(result: dict[str, Any], *, title: str = "Comparison", notes: tuple[str, ...] = ()) -> str:
    """compare.md; each of `notes` ends it as a bullet (what the comparison could not include, and why)."""
    rows = result["rows"]
    types = [kind for kind in ACTION_TYPES if kind in rows[0]["metrics"]["per_type"]]
    support = rows[0]["metrics"]["per_type"]
    lines = [
        f"# {title}",
        "",
        f"Every row scored on the same {result['n_steps']} steps of {result['n_sessions']} sessions "
        "(the steps all its sources share); 95% percentile-bootstrap intervals over steps in brackets.",
        "",
        "## Overall (paper Tables 2 and 4 layout)",
        "",
        "| Method | Exact Action Acc. | Action Type Acc. | Action Type F1 | Format OK |",
        "|---|---|---|---|---:|",
    ]
    for row in rows:
        m = row["metrics"]
        lines.append(
            f"| {row['label']} | " + " | ".join(f"{percent(m[k])} {interval(m, k)}" for k in ("exact_acc", "type_acc", "type_macro_f1"))
            + f" | {percent(m['format_ok'])} |"
        )
    lines += [
        "",
        "## Per gold action type (paper Table 3 layout): exact / type accuracy",
        "",
        "| Method | " + " | ".join(f"{kind} (n={support[kind]['support']})" for kind in types) + " |",
        "|---|" + "---|" * len(types),
    ]
    for row in rows:
        per_type = row["metrics"]["per_type"]
        lines.append(f"| {row['label']} | " + " | ".join(
            f"{percent(per_type[kind]['exact_acc'])} / {percent(per_type[kind]['type_acc'])}" for kind in types) + " |")
    lines += [
        "",
        "## Behaviour: what each policy predicts, and what the reward would pay for it",
        "",
        "Shares of predicted types over all steps; mean reward of the same responses under the Shop-R1 reward "
        "(DARS factor 1000) and without DARS (factor 1). The paper's argument for DARS: without it a correct "
        "click or search pays little more than the easy terminate, so a policy can collect reward by leaving.",
        "",
        "| Method | " + " | ".join(f"predicted {kind}" for kind in (*ACTION_TYPES, INVALID)) + " | reward (DARS) | reward (no DARS) |",
        "|---|" + "---:|" * (len(ACTION_TYPES) + 3),
    ]
    for row in rows:
        b = row["behaviour"]
        lines.append(f"| {row['label']} | " + " | ".join(percent(b["predicted_share"][kind]) for kind in (*ACTION_TYPES, INVALID))
                     + f" | {b['mean_reward']['with_dars']:.3f} | {b['mean_reward']['without_dars']:.3f} |")
    lines += ["", "![exact and type accuracy per row](compare.png)", "", "Sources: " + "; ".join(
        f"{row['label']}: {row['source']} ({row['steps_in_source']} steps)" for row in rows) + "."]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def plot_compare(result: dict[str, Any], path: Path) -> Path:
    """Exact and type accuracy per row, 0-100%, with their intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    figure, axes = plt.subplots(figsize=(2.2 + 1.3 * len(rows), 4))
    width = 0.38
    for offset, (key, label) in zip((-width / 2, width / 2), (("exact_acc", "exact action"), ("type_acc", "action type"))):
        values = [100 * row["metrics"][key] for row in rows]
        spans = [row["metrics"]["ci95"][key] for row in rows]
        errors = [[v - 100 * s[0] for v, s in zip(values, spans)], [100 * s[1] - v for v, s in zip(values, spans)]]
        axes.bar([i + offset for i in range(len(rows))], values, width, yerr=errors, capsize=3, label=label)
    axes.set_xticks(range(len(rows)), [row["label"] for row in rows], rotation=25, ha="right", fontsize=8)
    axes.set_ylim(0, 100)
    axes.set_ylabel("accuracy, %")
    axes.set_title(f"{result['n_steps']} shared test steps, 95% bootstrap intervals", fontsize=9)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return write_figure(figure, path)


def run_compare(arguments: list[str], out: Path, *, title: str = "Comparison", notes: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load, compare, and write compare.md / compare.json / compare.png into `out`; returns the result."""
    result = compare(load_rows(arguments))
    write_json(out / "compare.json", result)
    plot_compare(result, out / "compare.png")
    write_text(out / "compare.md", compare_markdown(result, title=title, notes=notes))
    return result
