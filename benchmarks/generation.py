"""Decoding of the embedded SmolLM2-135M on CPU: each weight format against its floor and against fp32.

Four measurements, in one run:

- decode_vs_floor: one decode step of the eval weight format (CPU_DEMO's: fp32-packed) at batch 1,
  through `agents.decoding` (prefill once, then steps over a preallocated KV cache at a ~1k-token
  context), against its floor: the format's Linear weight bytes at this machine's weight-streaming
  speed (`benchmarks.model_floor.streaming_bytes_per_s`, measured in the same run over the fp32
  model's Linear weights). Seconds per step = (t(33 steps) - t(1 step)) / 32, same prefill, no early
  stop; the median over rounds. 1.0 would be the memory floor.
- <format>_decode_vs_floor: the same for the other formats (`agents.models.WEIGHT_FORMATS`; int8
  against its 4x smaller floor).
- batched_vs_sequential: rows decoded per second by a batch of 8 rows against one row at a time, the
  same steps (the fast decoder batches only the decode steps; the weights are read once per step for
  every row).
- greedy agreement of each format with fp32: the same steps of the bundled test sessions (64; quick 8;
  latest-step context, 1,024-token budget, up to 64 new tokens), all through the fast decoder;
  the share of steps whose whole response is identical (<format>_greedy_same_text), and the counts of
  steps whose parsed action is.

    python -m benchmarks --only generation [--quick]
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks import timed

ROWS = 8
DECODE_STEPS = (1, 33)


def _decode_seconds(model, rows, steps: int) -> float:
    """Wall time of `steps` decode steps of `rows` (prefilled) with no row allowed to stop."""
    from agents.decoding import Sampling, decode

    never = frozenset({-1})  # no token id is -1: every row runs the full `steps`
    sampling = Sampling(max_new_tokens=steps, stop_ids=never, pad_id=0, greedy=True)
    start = time.perf_counter()
    decode(model, rows, sampling)
    return time.perf_counter() - start


def _step_seconds(model, rows) -> float:
    """Seconds per decode step of the batch `rows`: the difference of two lengths cancels the setup."""
    few, many = DECODE_STEPS
    return (_decode_seconds(model, rows, many) - _decode_seconds(model, rows, few)) / (many - few)


def _per_step(batches: dict[str, tuple[Any, list]], rounds: int) -> dict[str, float]:
    """Median seconds per decode step of each (model, rows), the workloads interleaved round by round
    (a burst of other load on the shared CPU then slows one round of each, not all rounds of one)."""
    samples: dict[str, list[float]] = {name: [] for name in batches}
    for _ in range(rounds):
        for name, (model, rows) in batches.items():
            samples[name].append(_step_seconds(model, rows))
    return {name: statistics.median(values) for name, values in samples.items()}


def _agreement(models: dict, tokenizer, count: int) -> dict[str, Any]:
    """Greedy answers of every format on the same steps, each non-fp32 format against fp32's."""
    from agents.hf_policy import HFPolicy
    from shop_env.loaders import bundled_sessions
    from shop_env.replay_env import observation_at

    observations = []
    for session in bundled_sessions("test"):
        observations += [observation_at(session, index, "latest") for index in range(len(session))]
        if len(observations) >= count:
            break
    observations = observations[:count]
    settings = {"greedy": True, "max_new_tokens": 64, "context_window": 1024, "context": "latest"}
    answers, seconds = {}, {}
    for name, model in models.items():
        answers[name], seconds[name] = timed(lambda model=model: HFPolicy(model, tokenizer, **settings).act(observations))
    numbers: dict[str, Any] = {"steps": count}
    for name in models:
        numbers[f"{name}_format_ok"] = sum(a.action is not None for a in answers[name])
        numbers[f"{name}_s"] = seconds[name]
        if name != "fp32":
            pairs = list(zip(answers[name], answers["fp32"], strict=True))
            numbers[f"{name}_same_text"] = sum(a.text == b.text for a, b in pairs)
            numbers[f"{name}_same_action"] = sum(a.action == b.action for a, b in pairs)
    return numbers


def run(quick: bool = False) -> dict[str, Any]:
    import torch

    from agents.decoding import prefill
    from agents.evaluate import CPU_DEMO
    from agents.models import WEIGHT_FORMATS, load_model_and_tokenizer
    from benchmarks.model_floor import _page_tokens, streaming_bytes_per_s, weight_bytes

    chosen = CPU_DEMO["weights"]
    models = {}
    for weights in WEIGHT_FORMATS:
        models[weights], tokenizer = load_model_and_tokenizer("smollm2", weights=weights)
    rounds = 3 if quick else 5
    bandwidth = streaming_bytes_per_s(models["fp32"], rounds=rounds)
    prompt = _page_tokens(tokenizer, 1024)
    floor = {weights: weight_bytes(model) / bandwidth for weights, model in models.items()}
    with torch.inference_mode():
        batches = {weights: (model, [prefill(model, prompt)]) for weights, model in models.items()}
        batches["batched"] = (models[chosen], batches[chosen][1] * ROWS)
        step_seconds = _per_step(batches, rounds)
    batch_step_seconds = step_seconds.pop("batched")
    agreement = _agreement(models, tokenizer, 8 if quick else 64)
    return {
        "benchmark": "generation",
        "ratios": {
            "decode_vs_floor": round(floor[chosen] / step_seconds[chosen], 3),
            "batched_vs_sequential": round(ROWS * step_seconds[chosen] / batch_step_seconds, 3),
            **{f"{weights}_decode_vs_floor": round(floor[weights] / step_seconds[weights], 3) for weights in models if weights != chosen},
            **{f"{weights}_greedy_same_text": round(agreement[f"{weights}_same_text"] / agreement["steps"], 3) for weights in models if weights != "fp32"},
        },
        "targets": {"decode_vs_floor": 0.5},
        "numbers": {
            "eval_weights": chosen,
            **{f"{weights}_decode_ms_per_step": round(value * 1e3, 2) for weights, value in step_seconds.items()},
            **{f"{weights}_floor_ms_per_step": round(value * 1e3, 2) for weights, value in floor.items()},
            **{f"{weights}_weight_mb": round(weight_bytes(model) / 1e6, 1) for weights, model in models.items()},
            "streaming_gb_per_s": round(bandwidth / 1e9, 2),
            f"batch{ROWS}_ms_per_step": round(batch_step_seconds * 1e3, 2),
            f"batch{ROWS}_tokens_per_s": round(ROWS / batch_step_seconds, 1),
            "context_tokens": len(prompt),
            **{f"agreement/{key}": round(value, 1) if isinstance(value, float) else value for key, value in agreement.items()},
            "threads": torch.get_num_threads(),
        },
        "notes": (
            f"SmolLM2-135M-Instruct; decode at a {len(prompt)}-token context through agents.decoding, greedy, median of "
            f"{rounds} interleaved rounds of (t{DECODE_STEPS[1]} - t{DECODE_STEPS[0]}) / {DECODE_STEPS[1] - DECODE_STEPS[0]}; the eval "
            f"format is {chosen} (agents.evaluate.CPU_DEMO); floor = the format's Linear weight bytes / weight-streaming "
            f"bandwidth (fp32 mat-vec over the model's Linear weights, same run); batched: {ROWS} rows of the eval format. "
            f"Agreement: {agreement['steps']} bundled test steps, latest-step context, 1,024-token budget, greedy, "
            f"up to 64 new tokens, every format ({', '.join(models)}) through the fast decoder, each against fp32."
        ),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
