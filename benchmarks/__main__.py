"""Run the benchmarks: `python -m benchmarks [--quick] [--only NAME ...] [--strict]`.

Prints one JSON line per benchmark on stdout (so `| jq` works) and a summary table on stderr, then
records the results in benchmarks/results.json and renders benchmarks/RESULTS.md from it with the
machine they came from. `--only` replaces just the named entries, so the file always holds the
latest result of every benchmark. `--quick` is the CI-sized run (under two minutes on two cores).

Exit status: 1 when a benchmark raised; with `--strict`, also when a ratio misses its target.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone

# Before any benchmark imports torch: spinning OpenMP threads distort timings on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shop_env.atomic_io import write_json, write_text

HERE = Path(__file__).resolve().parent
STORE = HERE / "results.json"
REPORT = HERE / "RESULTS.md"

BENCHMARKS: dict[str, str] = {
    "simplify_throughput": "benchmarks.simplify_throughput",
    "large_inputs": "benchmarks.large_inputs",
    "env_steps": "benchmarks.env_steps",
    "reward_throughput": "benchmarks.reward_throughput",
    "context_building": "benchmarks.context_building",
    "generation": "benchmarks.generation",
    "eval_throughput": "benchmarks.eval_throughput",
    "grpo_step": "benchmarks.grpo_step",
    "model_floor": "benchmarks.model_floor",
    "lora": "benchmarks.lora",
}
"""Benchmark name -> module with `run(quick: bool) -> dict`, in the order they run."""


def machine() -> dict[str, Any]:
    """What the numbers came from: CPU model, cores, RAM, OS, Python and library versions."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = None
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 2**20, 1)
                break
    versions = {}
    for package in ("torch", "transformers", "trl", "lxml", "rouge-score", "tokenizers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gib": ram_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **versions,
    }


def git_commit() -> str | None:
    """The checked-out commit, with "+dirty" when tracked files differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=HERE, capture_output=True).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def run_one(name: str, quick: bool, provenance: dict[str, Any]) -> dict[str, Any]:
    """Run one benchmark; an exception becomes an `error` record instead of ending the run.

    `provenance` (machine, commit, command) is stored in the record, so a results file updated by
    `--only` runs on different machines or commits still says where each number came from."""
    started = time.perf_counter()
    try:
        # Libraries print progress to stdout (the HF Trainer's log dicts); stdout is for the JSON lines only.
        with contextlib.redirect_stdout(sys.stderr):
            record = importlib.import_module(BENCHMARKS[name]).run(quick=quick)
    except Exception as err:  # noqa: BLE001  (one broken benchmark must not hide the others' numbers)
        record = {"benchmark": name, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    record["benchmark"] = name
    record["mode"] = "quick" if quick else "full"
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record.update(provenance)
    return record


def target_rows(record: dict[str, Any]) -> list[tuple[str, Any, float | None, bool | None]]:
    """(name, value, target, met) for every ratio and every targeted number; met is None untargeted."""
    targets = record.get("targets", {})
    values = list(record.get("ratios", {}).items()) + [
        (key, value) for key, value in record.get("numbers", {}).items() if key in targets
    ]
    rows = []
    for key, value in values:
        target = targets.get(key)
        met = None if target is None else isinstance(value, (int, float)) and math.isfinite(value) and value >= target
        rows.append((key, value, target, met))
    return rows


def misses(record: dict[str, Any]) -> list[str]:
    """The targets a record misses, as "name value < target" strings."""
    return [f"{key} {value} < {target}" for key, value, target, met in target_rows(record) if met is False]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def summary_table(records: list[dict[str, Any]]) -> Table:
    table = Table(title="Shop-R1 benchmarks (ratio = project code / baseline in the same run)")
    for column in ("benchmark", "ratio", "value", "target", "status"):
        table.add_column(column, justify="right" if column in ("value", "target") else "left")
    for record in records:
        if "error" in record:
            table.add_row(record["benchmark"], "-", "-", "-", f"[red]error: {record['error'][:80]}[/red]")
            continue
        for index, (key, value, target, met) in enumerate(target_rows(record)):
            status = {None: "", True: "[green]ok[/green]", False: "[red]below target[/red]"}[met]
            table.add_row(record["benchmark"] if index == 0 else "", key, _fmt(value), _fmt(target) if target else "", status)
    return table


def render_report(store: dict[str, Any]) -> str:
    """RESULTS.md: the machines, every ratio against its target, then each benchmark's numbers."""
    records = [store["results"][name] for name in BENCHMARKS if name in store["results"]]
    machines: list[dict[str, Any]] = []
    for record in records:
        if record["machine"] not in machines:
            machines.append(record["machine"])
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks` (see benchmarks/__init__.py); do not edit by hand.",
        "A ratio is the project's code over a baseline timed in the same run (see each benchmark's notes).",
        "",
        "## Machines",
        "",
        "| | " + " | ".join(f"M{i}" for i in range(1, len(machines) + 1)) + " |",
        "|---|" + "---|" * len(machines),
    ]
    for key in machines[0] if machines else ():
        lines.append(f"| {key} | " + " | ".join(str(m.get(key)) for m in machines) + " |")
    lines += [
        "",
        "## Ratios and targets",
        "",
        "| benchmark | ratio | value | target | status | mode | machine | commit | date |",
        "|---|---|---:|---:|---|---|---|---|---|",
    ]
    for record in records:
        where = f"{record['mode']} | M{machines.index(record['machine']) + 1} | {record['commit']} | {record['date']}"
        if "error" in record:
            lines.append(f"| {record['benchmark']} | - | - | - | error: {record['error'][:120]} | {where} |")
            continue
        for key, value, target, met in target_rows(record):
            status = {None: "", True: "ok", False: "**below target**"}[met]
            lines.append(f"| {record['benchmark']} | {key} | {_fmt(value)} | {_fmt(target) if target else ''} | {status} | {where} |")
    lines += ["", "## Details", ""]
    for record in records:
        lines += [f"### {record['benchmark']}", ""]
        if "error" in record:
            lines += ["```", record.get("traceback", record["error"]).rstrip(), "```", ""]
            continue
        if record.get("notes"):
            lines += [record["notes"], ""]
        if record.get("workloads"):  # model_floor: each workload against the hardware's floor
            lines += ["| workload | fraction of floor | measured s | floor s | peak RSS MiB | floor |", "|---|---:|---:|---:|---:|---|"]
            for workload, row in record["workloads"].items():
                lines.append(
                    f"| {workload} | {_fmt(row['fraction_of_floor'])} | {_fmt(row['seconds'])} | {_fmt(row['floor_seconds'])} "
                    f"| {_fmt(row['peak_rss_mb'])} | {row['floor']} |"
                )
            lines.append("")
        pinned = record.get("pinned_core")
        lines.append(f"- pinned to one core: {'core ' + str(pinned) if pinned is not None else 'no'}")
        lines.append(f"- wall time: {record['seconds']} s ({record['mode']} mode)")
        lines.append(f"- command: `{record['command']}`")
        for key, value in record.get("numbers", {}).items():
            lines.append(f"- {key}: {_fmt(value)}")
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run: under two minutes in all.")
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
        help=f"Run only these benchmarks ({', '.join(BENCHMARKS)}).",
    )
    parser.add_argument("--strict", action="store_true", help="Exit 1 when a ratio misses its target.")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave results.json and RESULTS.md alone.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)
    names = args.only or list(BENCHMARKS)
    provenance = {
        "machine": machine(),
        "commit": git_commit(),
        "command": shlex.join(["python", "-m", "benchmarks", *(argv if argv is not None else sys.argv[1:])]),
    }
    records = []
    for name in names:
        console.print(f"[bold]running {name}[/bold] ({'quick' if args.quick else 'full'})")
        record = run_one(name, args.quick, provenance)
        print(json.dumps({k: v for k, v in record.items() if k not in ("traceback", "machine")}), flush=True)
        records.append(record)
    console.print(summary_table(records))
    if not args.no_write:
        store = json.loads(STORE.read_text()) if STORE.exists() else {"results": {}}
        store["results"].update({record["benchmark"]: record for record in records})
        write_json(STORE, store)
        write_text(REPORT, render_report(store))
        console.print(f"wrote {REPORT.relative_to(Path.cwd()) if REPORT.is_relative_to(Path.cwd()) else REPORT}")
    failed = [r["benchmark"] for r in records if "error" in r]
    missed = {r["benchmark"]: misses(r) for r in records if "error" not in r and misses(r)}
    if failed:
        console.print(f"[red]benchmarks that raised: {', '.join(failed)}[/red]")
    if missed:
        console.print(f"[yellow]below target: {missed}[/yellow]")
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
