"""Whole-session prompts under the paper's 32k-token budget against tokenizing the concatenated text once.

For every step of a few sessions whose whole history is larger than the budget, `build_prompt`
renders the chat, counts tokens exactly and drops the oldest pages (then cuts the current page) until
the prompt fits. The floor is one tokenization of the full, uncut prompt text of the same step: any
exact token count has to read that text at least once. The ratio (prompts/s over tokenizations/s)
therefore says how many full-text tokenizations a prompt costs; the count is reported too.

Tokenizer: the real SmolLM2 tokenizer (`agents.models.load_tokenizer("smollm2")`; the first call on
a machine converts the embedded GGUF, about 30-50 s, outside the timed part). Pages are simplified
procedural-shop pages in retail-page noise of about 25k characters (~10k tokens), so a session passes
the budget after three or four steps. Pinned to one core.
"""

from __future__ import annotations

from typing import Any

from benchmarks import interleaved_rates, median_ratio, pinned_to_one_core
from benchmarks.large_inputs import large_session

MAX_TOKENS = 32_768
"""The paper's context length (section 4.1)."""
PAGE_CHARS = 25_000


class CountingTokenizer:
    """Wraps a tokenizer and counts calls and characters tokenized, to explain the ratio."""

    def __init__(self, tokenizer: Any):
        self._tokenizer = tokenizer
        self.calls = 0
        self.chars = 0

    def __call__(self, text, *args, **kwargs):
        self.calls += 1
        self.chars += len(text)
        return self._tokenizer(text, *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._tokenizer, name)


def run(quick: bool = False) -> dict:
    from agents.context_builder import build_prompt, render
    from agents.models import load_tokenizer
    from agents.prompts import build_messages
    from shop_env.replay_env import observation_at

    tokenizer = load_tokenizer("smollm2")
    sessions = [large_session(n_steps=6 if quick else 12, page_chars=PAGE_CHARS, seed=seed) for seed in range(1 if quick else 2)]
    observations = [observation_at(s, i, "whole") for s in sessions for i in range(len(s.steps))]
    full_texts = [render(build_messages(o, page_html=o["page"], past_pages=list(o["past_pages"])), tokenizer) for o in observations]

    def prompts() -> int:
        for observation in observations:
            build_prompt(observation, tokenizer, context_window=MAX_TOKENS)
        return len(observations)

    def tokenize_once() -> int:
        for text in full_texts:
            tokenizer(text, add_special_tokens=False)
        return len(full_texts)

    counting = CountingTokenizer(tokenizer)
    built = [build_prompt(o, counting, context_window=MAX_TOKENS) for o in observations]
    full_tokens = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in full_texts]
    rounds = 2 if quick else 5
    with pinned_to_one_core() as core:
        # The counting pass above already ran build_prompt and the tokenizer over every step.
        rates = interleaved_rates({"build_prompt": prompts, "tokenize_once": tokenize_once}, rounds=rounds, warmup=False)
    over_budget = sum(prompt.dropped.pages > 0 or prompt.dropped.page_chars > 0 for prompt in built)
    return {
        "benchmark": "context_building",
        "ratios": {"build_prompt_vs_tokenize_once": median_ratio(rates["build_prompt"], rates["tokenize_once"])},
        "numbers": {
            "prompts_per_s": round(rates["build_prompt"].best, 2),
            "full_text_tokenizations_per_s": round(rates["tokenize_once"].best, 2),
            "tokenizer_calls_per_prompt": round(counting.calls / len(observations), 2),
            "chars_tokenized_per_prompt_vs_full_text": round(counting.chars / sum(len(t) for t in full_texts), 4),
            "prompts": len(observations),
            "prompts_over_budget": over_budget,
            "mean_full_text_tokens": round(sum(full_tokens) / len(full_tokens)),
            "max_full_text_tokens": max(full_tokens),
            "max_prompt_tokens": max(prompt.n_tokens for prompt in built),
            "rounds": rounds,
        },
        "pinned_core": core,
        "notes": (
            f"build_prompt(observation_at(session, i, 'whole'), tokenizer, context_window={MAX_TOKENS}) for every step i "
            "vs tokenizer(full rendered prompt text) once per step; SmolLM2 tokenizer; pages of about "
            f"{PAGE_CHARS:,} simplified characters."
        ),
    }
