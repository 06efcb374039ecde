"""Evaluation throughput on the `make demo` workload: the CPU eval path against the path it replaced.

Both sides run `agents.evaluate.evaluate_policy` over the same steps with the settings of
`agents.evaluate.CPU_DEMO` for the zero-shot row of `make demo` (the embedded SmolLM2-135M, the first 24
steps of the bundled test sessions, latest-step context, a 1,024-token window, up to 96 new tokens,
T = 0.6 sampling, self-certainty on):

- hf_sequential (the baseline: `make demo` before the fast path): float32 weights, transformers'
  `generate`, one prompt at a time;
- fast (what `make demo` runs now): CPU_DEMO's weight format (fp32-packed), decoder and batch: the
  next steps in order (the policy does not read the env's feedback; CPU_DEMO's batch of 24 is the whole
  workload), each prompt prefilled on its own with prefix reuse, the batch decoded together.

The ratio is steps per second of wall time, fast over baseline. Sampling makes the two sides' texts
differ, so the tokens each generated are reported beside it (a side that wrote longer answers did more
work). The target is defined on this workload, so `--quick` runs it too (about 5 minutes).

    python -m benchmarks --only eval_throughput [--quick]
"""

from __future__ import annotations

from typing import Any

from benchmarks import interleaved_rates, median_ratio, timed


def run(quick: bool = False) -> dict[str, Any]:
    from agents.evaluate import CPU_DEMO, EvalConfig, evaluate_policy
    from agents.hf_policy import HFPolicy
    from agents.models import load_model_and_tokenizer
    from shop_env.loaders import resolve_sessions

    demo = EvalConfig(**CPU_DEMO, out="unused")  # quick or not: the target is make demo's workload
    sessions = list(resolve_sessions(demo.sessions))
    settings = {
        "temperature": demo.temperature, "context_window": demo.context_window, "max_new_tokens": demo.max_new_tokens,
        "context": demo.context, "seed": demo.seed, "with_self_certainty": demo.self_certainty,
    }
    (fp32, tokenizer), fp32_load = timed(lambda: load_model_and_tokenizer(demo.policy))
    (fast_model, _), fast_load = timed(lambda: load_model_and_tokenizer(demo.policy, weights=demo.weights))
    policies = {
        "hf_sequential": HFPolicy(fp32, tokenizer, decoder="generate", batch_size=1, **settings),
        "fast": HFPolicy(fast_model, tokenizer, decoder=demo.decoder, batch_size=demo.generation_batch_size, **settings),
    }
    results: dict[str, dict] = {}

    def side(name: str):
        def evaluate() -> int:
            results[name] = evaluate_policy(
                policies[name], sessions, context=demo.context, limit=demo.limit, batch_size=demo.batch_size, progress=False
            )
            return len(results[name]["predictions"])

        return evaluate

    rates = interleaved_rates({name: side(name) for name in policies}, rounds=1, warmup=False)
    tokens = {name: sum(p["completion_tokens"] for p in result["predictions"]) for name, result in results.items()}
    format_ok = {name: result["metrics"]["format_ok"] for name, result in results.items()}
    steps = rates["fast"].items
    return {
        "benchmark": "eval_throughput",
        "ratios": {"fast_vs_hf_sequential": median_ratio(rates["fast"], rates["hf_sequential"])},
        "targets": {"fast_vs_hf_sequential": 4.0},
        "numbers": {
            **{f"{name}_steps_per_s": round(rate.best, 4) for name, rate in rates.items()},
            **{f"{name}_s_total": round(steps / rate.best, 1) for name, rate in rates.items()},
            **{f"{name}_generated_tokens": count for name, count in tokens.items()},
            **{f"{name}_format_ok": value for name, value in format_ok.items()},
            "steps": steps,
            "fast_weights": demo.weights,
            "fast_decoder": demo.decoder,
            "model_load_s_fp32": round(fp32_load, 1),
            "model_load_s_fast": round(fast_load, 1),
        },
        "notes": (
            f"SmolLM2-135M-Instruct, the first {steps} steps of bundled:test, {demo.context} context, budget "
            f"{demo.context_window} tokens, up to {demo.max_new_tokens} new tokens, T={demo.temperature}, self-certainty on; "
            f"baseline: float32 + generate one prompt at a time; fast: {demo.weights} weights + the {demo.decoder} decoder, "
            f"batches of {demo.batch_size} steps decoded together. "
            "Steps per second of wall time through evaluate_policy (rewards included), one round each."
        ),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
