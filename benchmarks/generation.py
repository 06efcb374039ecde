"""Generation throughput of the embedded SmolLM2-135M on CPU: batched (left-padded) against one prompt at a time.

Both sides run `HFPolicy.act` on the same observations of the bundled test sessions with the same
settings (greedy, the CPU budget of `shop-r1 eval`); the batched policy answers them all in one call
(`batch_size` = number of prompts, similar lengths batched together), the sequential one calls `act`
once per observation. Rounds alternate between the two sides, so load from other processes hits both.

Throughput counts only the tokens each response really has (up to and including its end of turn,
never the padding of rows that finished early), per second of wall time; prompt tokens/s is reported
beside it because on a CPU the prefill of ~1k-token prompts costs more than the decoding. Greedy
decoding makes both sides produce the same text, which is checked (`outputs_identical`): batching
must change the speed, not the answers. Not pinned: generation uses both cores, as `shop-r1 eval` does.

No target: the ratio decides `HFPolicy`'s default. On 2 CPU cores it measured 0.45 (full: 1.5 vs 3.6
tokens/s) and 0.57 (quick), because a padded batch makes SDPA's prefill use an explicit mask instead of
its causal kernel (~2x slower) and prefill dominates at ~1.8k-token prompts; so `HFPolicy` generates
one prompt at a time on CPU and batches on GPU.
"""

from __future__ import annotations

from typing import Any

from benchmarks import interleaved_rates, median_ratio, timed

def run(quick: bool = False) -> dict[str, Any]:
    from agents.hf_policy import HFPolicy
    from agents.models import load_model_and_tokenizer
    from shop_env.loaders import bundled_sessions
    from shop_env.replay_env import observation_at

    count = 2 if quick else 8  # quick: CI-sized
    max_new_tokens = 16 if quick else 64
    sessions = bundled_sessions("test")
    # Latest-step prompts (~0.5-1k tokens) from different sessions and steps: the shape of a `shop-r1 eval` batch.
    observations = [observation_at(s, min(1, len(s) - 1), "latest") for s in sessions[:count]]
    (model, tokenizer), load_seconds = timed(lambda: load_model_and_tokenizer("smollm2"))
    settings = {"greedy": True, "max_new_tokens": max_new_tokens, "max_tokens": 2048}
    batched = HFPolicy(model, tokenizer, batch_size=count, **settings)
    sequential = HFPolicy(model, tokenizer, batch_size=1, **settings)
    answers: dict[str, list] = {}

    def batched_round() -> int:
        answers["batched"] = batched.act(observations)
        return sum(output.completion_tokens for output in answers["batched"])

    def sequential_round() -> int:
        answers["sequential"] = [sequential.act([observation])[0] for observation in observations]
        return sum(output.completion_tokens for output in answers["sequential"])

    rates = interleaved_rates({"batched": batched_round, "sequential": sequential_round}, rounds=1 if quick else 2, warmup=False)
    prompt_tokens = sum(output.prompt_tokens for output in answers["batched"])
    completion_tokens = rates["batched"].items
    identical = [a.text for a in answers["batched"]] == [s.text for s in answers["sequential"]]
    seconds = {name: completion_tokens / rate.best for name, rate in rates.items()}
    return {
        "benchmark": "generation",
        "ratios": {"batched_vs_sequential": median_ratio(rates["batched"], rates["sequential"])},
        "numbers": {
            "batched_tokens_per_s": round(rates["batched"].best, 2),
            "sequential_tokens_per_s": round(rates["sequential"].best, 2),
            "batched_prompt_tokens_per_s": round(prompt_tokens / seconds["batched"], 1),
            "sequential_prompt_tokens_per_s": round(prompt_tokens / seconds["sequential"], 1),
            "prompts": count,
            "prompt_tokens_mean": round(prompt_tokens / count, 1),
            "completion_tokens_mean": round(completion_tokens / count, 1),
            "max_new_tokens": max_new_tokens,
            "outputs_identical": int(identical),
            "model_load_s": round(load_seconds, 2),
        },
        "notes": (
            f"SmolLM2-135M-Instruct (float32, de-quantized from the embedded GGUF), greedy, {count} latest-step "
            f"prompts of the bundled test sessions, up to {max_new_tokens} new tokens each; tokens/s counts "
            "generated tokens up to each response's end of turn, per second of wall time (best round)."
        ),
    }
