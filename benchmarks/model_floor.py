"""SmolLM2-135M's workloads as fractions of this machine's floor, floors and workloads measured in one run.

A floor is the least time the hardware needs for a workload's unavoidable work; fraction of floor =
floor time / measured time, so 1.0 means the code runs at the hardware's speed. Two floors, at the
thread count the runs use (torch's default, which no CLI changes; recorded as `threads`):

- sgemm: fp32 `torch.mm` of two 2048 x 2048 matrices (2 n^3 FLOPs), best round: the compute floor.
- weight streaming: `F.linear(x, W)`, x of shape (1, K), for every `nn.Linear` weight W of the model,
  all in sequence each round (540 MB of fp32 weights, far beyond the caches, so every byte comes from
  memory); bytes over seconds of the best round: the memory floor of decoding.

Each workload runs in its own spawned interpreter; its peak RSS (ru_maxrss: imports, model and
workload, taken before the floors) is reported beside it. Each of those interpreters then loads the
fp32 model and measures both floors; the run's floor is the best of them, so load that slowed one
interpreter cannot move its own workload closer to the floor.

FLOPs count the Linear weights each token passes through: N_body, the decoder layers' Linear weights
(106.2M), for every token, and the LM head's (576 x 49,152 = 28.3M, tied to the embedding) only at the
positions whose logits are computed. So N = N_body + N_head = 134.5M where every position gets
logits (SFT), N_body plus one head position in a prefill. Left out, so every floor is a lower bound:
the embedding lookup (a row read), norms and activations, and attention's T^2 term (QK^T and AV,
causal half: 36 GFLOP at 1,024 tokens, 13-17% on top of the counted forward).

- sft: forward + backward over 1,024 tokens of bundled pages with labels (logits at every position):
  6 N x 1,024 FLOPs at sgemm speed. Best round.
- prefill: a forward over the same 1,024 tokens under inference_mode with logits for the last position
  only, as `generate` asks: 2 N_body x 1,024 + 2 N_head FLOPs. Best round.
- decode_<format>, for each of `agents.models.WEIGHT_FORMATS` (fp32; int8: torch's dynamic quantization
  of every Linear, LM head included, 1 byte per weight plus a float32 scale per output channel):
  seconds per generated token through `HFPolicy.act` (greedy, its default decoder, one observation: the
  shortest step-0 prompt of the bundled test sessions), from calls with max_new_tokens 1 and 33 in the
  same round: (t33 - t1) / (n33 - n1) with n the tokens really generated; floor: the format's Linear
  weight bytes at streaming speed (the KV-cache read is left out). Median round.
- grpo_step: one optimizer step of the default Shop-R1 GRPO trainer (`benchmarks.grpo_step`'s ours
  variant) on one bundled training prompt cut to Lp tokens (`grpo_rows`; quick 256, full 1,024), G = 4
  completions of mean length Lc (at most 16 / 64), U = Lp + G Lc unique tokens:
  policy forward + backward 6 N U and reference forward 2 N U (the LM head on the G Lc completion
  tokens only, as TRL asks), rollout prefill 2 N_body Lp, all at sgemm speed, plus Lc - 1 decode steps
  (the first token comes from the prefill; the longest completion may need more) at the fp32 decode
  floor: the G rows of a step share one read of the weights. The first step from fresh weights
  in a fresh interpreter, one-time costs included.

    python -m benchmarks --only model_floor [--quick]
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from agents.models import WEIGHT_FORMATS
from benchmarks import peak_rss_mb, timed

if TYPE_CHECKING:
    import torch

MODEL = "smollm2"
TOKENS = 1024
"""Tokens of the SFT and prefill workloads."""
SGEMM_SIZE = 2048
DECODE_NEW_TOKENS = (1, 33)
"""The two max_new_tokens of the decode calls: their difference is 32 decoding steps, same prefill."""
GROUP = 4
"""Completions per prompt of the GRPO step (G)."""


def linear_weights(model: Any) -> list[torch.Tensor]:
    """Every distinct `nn.Linear` weight of the model (a weight tied to two layers counts once)."""
    import torch

    unique: dict[int, torch.Tensor] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            unique.setdefault(id(module.weight), module.weight)
    return list(unique.values())


def weight_bytes(model: Any) -> int:
    """Bytes a forward of one token reads from the Linear weights: all of them, once.

    A dynamically quantized int8 Linear (`agents.models.quantize_int8`) reads 1 byte per weight plus one
    float32 scale per output channel (fbgemm's), counted from the module's own quantized weight; a
    packed float32 one (`agents.packed_linear`) 4 bytes per weight.
    """
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    from agents.packed_linear import PackedLinear

    total = sum(weight.numel() * weight.element_size() for weight in linear_weights(model))
    for module in model.modules():
        if isinstance(module, PackedLinear):
            total += module.weight_bytes
        if isinstance(module, Int8Linear):
            weight = module.weight()  # the int8 tensor, unpacked from fbgemm's layout
            per_channel = weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
            scales = weight.q_per_channel_scales().numel() if per_channel else 1
            total += weight.numel() * weight.element_size() + 4 * scales
    return total


@dataclass(frozen=True)
class MatmulParams:
    """Linear weights a token multiplies: `body` at every position, `head` (the LM head) where logits are asked."""

    body: int
    head: int

    @classmethod
    def of(cls, model: Any) -> MatmulParams:
        head = model.get_output_embeddings().weight
        return cls(sum(w.numel() for w in linear_weights(model) if w is not head), head.numel())

    def forward_flops(self, tokens: float, logit_positions: float) -> float:
        """2 FLOPs per weight per token (a multiply and an add), the head only at `logit_positions`."""
        return 2 * (self.body * tokens + self.head * logit_positions)


def sft_flops(params: MatmulParams, tokens: int) -> float:
    """Forward + backward (twice the forward: input and weight gradients) with logits at every position."""
    return 3 * params.forward_flops(tokens, tokens)


def prefill_flops(params: MatmulParams, tokens: int) -> float:
    """A forward over `tokens` with the logits of the last position only."""
    return params.forward_flops(tokens, 1)


def grpo_step_floor(
    params: MatmulParams, fp32_weight_bytes: int, prompt_tokens: int, group: int, completion_tokens: float
) -> tuple[float, float]:
    """(FLOPs at sgemm speed, bytes at streaming speed) of one GRPO step, each unique token once.

    U = Lp + G Lc: the policy forward + backward and the reference forward over U tokens with the LM
    head on the G Lc completion tokens, the rollout's prefill of the prompt, and Lc - 1 decode steps
    that each stream the weights once for all G rows.
    """
    completions = group * completion_tokens
    unique = prompt_tokens + completions
    flops = (
        3 * params.forward_flops(unique, completions)
        + params.forward_flops(unique, completions)
        + prefill_flops(params, prompt_tokens)
    )
    return flops, max(completion_tokens - 1, 0) * fp32_weight_bytes


def floor_seconds(flops: float, streamed_bytes: float, flops_per_s: float, bytes_per_s: float) -> float:
    return flops / flops_per_s + streamed_bytes / bytes_per_s


def sgemm_flops_per_s(rounds: int, size: int = SGEMM_SIZE) -> float:
    """fp32 matrix-multiply FLOP/s of the best of `rounds` products of two size x size matrices."""
    import torch

    a, b, out = torch.randn(size, size), torch.randn(size, size), torch.empty(size, size)
    torch.mm(a, b, out=out)  # warm-up: thread pool, packing buffers
    best = min(timed(lambda: torch.mm(a, b, out=out))[1] for _ in range(rounds))
    return 2 * size**3 / best


def streaming_bytes_per_s(model: Any, rounds: int) -> float:
    """Weight bytes per second of mat-vec products over all of the model's Linear weights, best round."""
    import torch
    import torch.nn.functional as F

    weights = linear_weights(model)
    inputs = [torch.randn(1, weight.shape[1], dtype=weight.dtype) for weight in weights]  # (1, K) each

    def one_round() -> None:
        for weight, x in zip(weights, inputs, strict=True):
            F.linear(x, weight)

    with torch.inference_mode():
        one_round()
        best = min(timed(one_round)[1] for _ in range(rounds))
    return weight_bytes(model) / best


def _load_fp32() -> tuple[Any, Any]:
    from agents.models import load_model_and_tokenizer

    return load_model_and_tokenizer(MODEL)


def _page_tokens(tokenizer: Any, count: int) -> list[int]:
    """`count` token ids of real shop pages: the bundled test sessions' observations, in order."""
    from shop_env.loaders import bundled_sessions

    ids: list[int] = []
    for session in bundled_sessions("test"):
        for step in session.steps:
            ids += tokenizer(step.observation, add_special_tokens=False)["input_ids"]
            if len(ids) >= count:
                return ids[:count]
    raise RuntimeError(f"the bundled test sessions hold fewer than {count} tokens of pages")


def _sft(quick: bool) -> dict[str, Any]:
    import torch

    model, tokenizer = _load_fp32()
    model.train()
    ids = torch.tensor([_page_tokens(tokenizer, TOKENS)])  # (1, T)

    def forward_backward(batch: torch.Tensor) -> None:
        model(input_ids=batch, labels=batch).loss.backward()
        model.zero_grad(set_to_none=True)

    forward_backward(ids[:, :128] if quick else ids)  # warm-up; quick warms on a slice (a full round is 10+ s)
    seconds = [timed(lambda: forward_backward(ids))[1] for _ in range(1 if quick else 3)]
    return {"seconds": min(seconds), "tokens": TOKENS, "rounds": len(seconds)}


def _prefill(quick: bool) -> dict[str, Any]:
    import torch

    model, tokenizer = _load_fp32()
    ids = torch.tensor([_page_tokens(tokenizer, TOKENS)])  # (1, T)

    @torch.inference_mode()
    def forward() -> None:
        model(input_ids=ids, use_cache=True, logits_to_keep=1)

    forward()  # warm-up
    seconds = [timed(forward)[1] for _ in range(2 if quick else 5)]
    return {"seconds": min(seconds), "tokens": TOKENS, "rounds": len(seconds)}


def _shortest_observation(policy: Any) -> dict:
    """The step-0 latest-context observation of the first 20 test sessions with the shortest prompt."""
    from shop_env.loaders import bundled_sessions
    from shop_env.replay_env import observation_at

    observations = [observation_at(session, 0, "latest") for session in bundled_sessions("test")[:20]]
    return min(observations, key=lambda observation: policy.build_prompts([observation])[0].n_tokens)


def _decode(weight_format: str, quick: bool) -> dict[str, Any]:
    from agents.hf_policy import HFPolicy
    from agents.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(MODEL, weights=weight_format)
    short, long = (
        HFPolicy(model, tokenizer, greedy=True, max_new_tokens=k, context_window=2048) for k in DECODE_NEW_TOKENS
    )
    observation = _shortest_observation(long)
    for policy in (short, long):  # warm-up, each: the first call of either length runs no timed round
        policy.act([observation])
    per_token, steps = [], []
    for round_index in range(2 if quick else 5):
        calls = {}
        for policy in (short, long) if round_index % 2 == 0 else (long, short):
            calls[policy] = timed(lambda policy=policy: policy.act([observation])[0])
        (first, t1), (second, t2) = calls[short], calls[long]
        if first.prompt_tokens != second.prompt_tokens or first.error or second.error:
            raise RuntimeError(
                f"decode: the two calls saw different prompts ({first.prompt_tokens} vs {second.prompt_tokens} "
                f"tokens; errors {first.error!r}, {second.error!r}), so their difference is not decoding alone"
            )
        tokens = second.completion_tokens - first.completion_tokens
        if tokens < 8:
            raise RuntimeError(f"decode: greedy output ended after {second.completion_tokens} tokens; too few to time")
        per_token.append((t2 - t1) / tokens)
        steps.append(tokens)
    return {
        "seconds": statistics.median(per_token),
        "weight_bytes": weight_bytes(model),
        "prompt_tokens": first.prompt_tokens,
        "decoded_tokens_per_round": min(steps),
        "rounds": len(per_token),
    }


def grpo_rows(tokenizer: Any, prompt_tokens: int) -> list[dict[str, Any]]:
    """One GRPO row whose chat prompt is ~`prompt_tokens` long: a bundled training prompt's text, cut at a token.

    The project's prompts cannot be as short as the quick mode's (instructions and persona alone take
    more), and a cut keeps Lp whatever the prompt builder does; the row's `prompt_tokens` is the
    templated prompt's real length, which the floor uses.
    """
    from shop_env.loaders import bundled_sessions
    from agents.context_builder import PromptBudget
    from training.data import rl_rows, select_steps

    def templated_length(messages: list[dict]) -> int:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    rows = rl_rows(select_steps(bundled_sessions("train"), max_examples=8, seed=0), tokenizer, PromptBudget("whole", 4096, 64))
    row = next((row for row in rows if row["prompt_tokens"] >= prompt_tokens), None)
    if row is None:
        raise RuntimeError(f"no bundled training prompt has {prompt_tokens} tokens to cut from")
    text = "\n\n".join(message["content"] for message in row["prompt"])
    keep = prompt_tokens - templated_length([{"role": "user", "content": ""}])
    prompt = [{"role": "user", "content": tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"][:keep])}]
    return [{**row, "prompt": prompt, "prompt_tokens": templated_length(prompt)}]


def _grpo_step(quick: bool) -> dict[str, Any]:
    from agents.models import load_tokenizer
    from benchmarks.grpo_step import _one_step
    from training.grpo import GRPORunConfig

    prompt_tokens, new_tokens = (256, 16) if quick else (1024, 64)
    rows = grpo_rows(load_tokenizer(MODEL), prompt_tokens)
    config = GRPORunConfig(
        model=MODEL, max_steps=1, num_generations=GROUP, prompts_per_step=1, micro_batch_size=GROUP,
        context_window=prompt_tokens + new_tokens, max_new_tokens=new_tokens, learning_rate=1e-6,
    )
    step = _one_step("ours", config, rows, seed=0)
    return {
        "seconds": step["seconds"],
        "prompt_tokens": rows[0]["prompt_tokens"],
        "completion_tokens_mean": step["length"],
        "max_new_tokens": new_tokens,
        "group": GROUP,
    }


WORKLOADS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "sft": _sft,
    "prefill": _prefill,
    **{f"decode_{name}": partial(_decode, name) for name in WEIGHT_FORMATS},
    "grpo_step": _grpo_step,
}
"""Workload -> function of `quick` returning its measured `seconds` and what its floor needs."""


def _floor_work(name: str, result: dict[str, Any], params: MatmulParams, fp32_bytes: int) -> tuple[float, float, str]:
    """(FLOPs at sgemm speed, bytes at streaming speed, how) of a workload's floor."""
    if name == "sft":
        return sft_flops(params, result["tokens"]), 0, f"6 N x {result['tokens']} tokens at sgemm"
    if name == "prefill":
        return prefill_flops(params, result["tokens"]), 0, f"2 N_body x {result['tokens']} tokens at sgemm"
    if name.startswith("decode_"):
        return 0, result["weight_bytes"], f"{result['weight_bytes'] / 1e6:.0f} MB of weights per token at streaming"
    flops, streamed = grpo_step_floor(params, fp32_bytes, result["prompt_tokens"], result["group"], result["completion_tokens_mean"])
    return flops, streamed, (
        f"8 N U + 2 N_body Lp at sgemm + (Lc - 1) x fp32 decode floor; Lp = {result['prompt_tokens']}, "
        f"G = {result['group']}, Lc = {result['completion_tokens_mean']:.1f}"
    )


def _in_child(name: str, quick: bool) -> dict[str, Any]:
    """Run one workload in this (fresh) interpreter, then measure the floors here too."""
    os.dup2(2, 1)  # the runner's stdout carries only its JSON lines; the trainer's log prints go to stderr
    import torch

    result = WORKLOADS[name](quick)
    result["peak_rss_mb"] = peak_rss_mb()
    result["threads"] = torch.get_num_threads()
    gc.collect()
    model, _ = _load_fp32()
    params, fp32_bytes = MatmulParams.of(model), weight_bytes(model)
    result["floor_flops"], result["floor_bytes"], result["floor"] = _floor_work(name, result, params, fp32_bytes)
    rounds = 3 if quick else 10
    result |= {
        "sgemm_flops_per_s": sgemm_flops_per_s(rounds),
        "stream_bytes_per_s": streaming_bytes_per_s(model, rounds),
        "params": (params.body, params.head),
        "fp32_weight_bytes": fp32_bytes,
    }
    return result


def _in_fresh_interpreter(name: str, quick: bool) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = pool.apply(_in_child, (name, quick))
        pool.close()  # let the worker exit on its own: a terminated one leaks its semaphores (tqdm's lock)
        pool.join()
    return result


def ratio_name(workload: str, floor_flops: float, floor_bytes: float) -> str:
    """`<workload>_vs_sgemm`, `_vs_stream` or `_vs_floor` (both), after the floor it is measured against."""
    return f"{workload}_vs_" + ("floor" if floor_flops and floor_bytes else "sgemm" if floor_flops else "stream")


def run(quick: bool = False) -> dict[str, Any]:
    results = {name: _in_fresh_interpreter(name, quick) for name in WORKLOADS}
    threads = {result["threads"] for result in results.values()}
    params = {result["params"] for result in results.values()}
    if len(threads) != 1 or len(params) != 1:
        raise RuntimeError(f"the workload interpreters disagree on threads {threads} or parameter counts {params}")
    sgemm = [result["sgemm_flops_per_s"] for result in results.values()]
    stream = [result["stream_bytes_per_s"] for result in results.values()]
    workloads, ratios = {}, {}
    for name, result in results.items():
        floor = floor_seconds(result["floor_flops"], result["floor_bytes"], max(sgemm), max(stream))
        fraction = round(floor / result["seconds"], 3)
        ratios[ratio_name(name, result["floor_flops"], result["floor_bytes"])] = fraction
        workloads[name] = {
            "fraction_of_floor": fraction,
            "seconds": round(result["seconds"], 4),
            "floor_seconds": round(floor, 4),
            "peak_rss_mb": round(result["peak_rss_mb"], 1),
            "floor": result["floor"],
        }
    (body, head), = params
    decode = {name: result for name, result in results.items() if name.startswith("decode_")}
    grpo = results["grpo_step"]
    return {
        "benchmark": "model_floor",
        "ratios": ratios,
        "numbers": {
            "threads": threads.pop(),
            "sgemm_gflop_s": round(max(sgemm) / 1e9, 1),
            "sgemm_gflop_s_median": round(statistics.median(sgemm) / 1e9, 1),
            "stream_gb_s": round(max(stream) / 1e9, 2),
            "stream_gb_s_median": round(statistics.median(stream) / 1e9, 2),
            "n_body_m": round(body / 1e6, 2),
            "n_head_m": round(head / 1e6, 2),
            **{f"{name}/weight_mb": round(result["weight_bytes"] / 1e6, 1) for name, result in decode.items()},
            **{f"{name}/tokens_per_s": round(1 / result["seconds"], 2) for name, result in decode.items()},
            **{f"{name}/prompt_tokens": result["prompt_tokens"] for name, result in decode.items()},
            "sft_tokens_per_s": round(results["sft"]["tokens"] / results["sft"]["seconds"], 1),
            "prefill_tokens_per_s": round(results["prefill"]["tokens"] / results["prefill"]["seconds"], 1),
            "grpo_step/prompt_tokens": grpo["prompt_tokens"],
            "grpo_step/completion_tokens_mean": round(grpo["completion_tokens_mean"], 1),
            "grpo_step/max_new_tokens": grpo["max_new_tokens"],
            "grpo_step/group": grpo["group"],
        },
        "workloads": workloads,
        "notes": (
            "Fraction of floor = floor time / measured time (1.0 = at the hardware's floor), each workload in "
            "its own spawned interpreter with its peak RSS (ru_maxrss). Floors: fp32 sgemm (torch.mm 2048^2) "
            "and weight streaming (F.linear of a (1, K) vector with every Linear weight of the model, in "
            "sequence), best of every interpreter's measurement, at torch's default thread count. "
            "N = N_body (decoder Linear weights) + N_head (LM head, tied) where every position gets logits; "
            "a prefill asks logits for its last position only (2 N_body T + 2 N_head). SFT: fwd+bwd 6 N x "
            "1,024 tokens; decode: per token through HFPolicy.act (greedy, max_new_tokens 33 minus 1, "
            "tokens really generated), floor = the format's Linear weight bytes at streaming speed; GRPO: "
            "one step of the default trainer, floor = its unique tokens' FLOPs (policy 6 N U + reference "
            "2 N U with U = Lp + G Lc, the head on completions only; rollout prefill 2 N_body Lp) plus Lc - 1 "
            "fp32 decode steps. Attention's T^2 FLOPs and the KV-cache read are left out: the floors are lower bounds."
        ),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
