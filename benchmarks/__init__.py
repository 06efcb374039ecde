"""Benchmarks: Shop-R1's hot paths measured side by side with the floor they are built on.

Run them with `python -m benchmarks [--quick] [--only NAME]` from the repo root (`make bench` runs
the quick set). Each benchmark module has `run(quick: bool) -> dict` returning one JSON-ready record:

    {"benchmark": "env_steps", "ratios": {"oracle_vs_bare": 0.61, ...},
     "targets": {"oracle_vs_bare": 0.5, ...}, "numbers": {"oracle_steps_per_s": 14200.0, ...},
     "pinned_core": 1, "notes": "..."}

`ratios` compare the project's code with a baseline timed in the same run (interleaved rounds, so
machine noise hits both sides alike); `targets` are the minimum ratio or number the project keeps.
Speed is measured only here, never asserted in tests.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """Throughput of one workload over several timed rounds, in items per second."""

    best: float
    """The fastest round: the least disturbed by other processes (timeit's advice)."""
    median: float
    """The median round, to show how noisy the machine was."""
    items: int
    """Items processed per round."""
    per_round: tuple[float, ...]
    """Every round's rate, in order, so rates of the same round can be paired (`median_ratio`)."""


def interleaved_rates(
    workloads: Mapping[str, Callable[[], int]], *, rounds: int, warmup: bool = True
) -> dict[str, Rate]:
    """Time each workload `rounds` times, round-robin, after one untimed warm-up call each.

    A workload processes a fixed batch and returns how many items it handled. Interleaving means a
    burst of load from another process slows every side of a ratio, not just one; many short rounds
    and the best of them keep the ratio steady on a shared machine. Odd rounds run the workloads in
    reverse order (ABBA), so neither side of a pair always finds the caches warmed by the other
    (a fixed order was worth about 0.03 of the env ratio). `warmup=False` skips the warm-up for
    workloads so slow that the caller has already exercised them.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    for workload in workloads.values() if warmup else ():
        workload()
    per_round: dict[str, list[float]] = {name: [] for name in workloads}
    items: dict[str, int] = {}
    order = list(workloads.items())
    for round_index in range(rounds):
        for name, workload in order if round_index % 2 == 0 else reversed(order):
            start = time.perf_counter()
            count = workload()
            elapsed = time.perf_counter() - start
            items[name] = count
            per_round[name].append(count / elapsed if elapsed > 0 else float("inf"))
    return {
        name: Rate(best=max(rates), median=statistics.median(rates), items=items[name], per_round=tuple(rates))
        for name, rates in per_round.items()
    }


def median_ratio(numerator: Rate, denominator: Rate) -> float:
    """Median over rounds of numerator / denominator within the same round, rounded for reports.

    The two sides of a round ran back to back, so a burst of load that slows one slows the other;
    the ratio of best rounds could instead pair a quiet second on one side with a busy one on the other.
    """
    ratios = [a / b for a, b in zip(numerator.per_round, denominator.per_round, strict=True) if b]
    return round(statistics.median(ratios), 4) if ratios else float("inf")


def timed(function: Callable[[], object]) -> tuple[object, float]:
    """Call `function` once; return its result and the wall time in seconds."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


@contextmanager
def pinned_to_one_core() -> Iterator[int]:
    """Run the block on one CPU core (the last one this process may use); yields the core's number.

    The targets are per core: pinning keeps a multi-threaded library from borrowing the other core
    and makes the numbers comparable across machines with different core counts.
    """
    allowed = os.sched_getaffinity(0)
    core = max(allowed)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, allowed)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """This process's resident set size now, in MiB, from /proc/self/statm."""
    with open("/proc/self/statm") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20

