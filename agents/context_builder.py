"""Whole-session and latest-step prompts that fit a token budget, counted with the model's own tokenizer.

The paper pads/truncates contexts to 32k tokens; pages are large (OPeRA: ~100k characters at the
median), so a whole-session prompt rarely fits as is. When it does not, `build_prompt` cuts in this
order, and reports what it cut:

1. the oldest earlier pages' HTML (each replaced by a one-line placeholder; its action stays),
2. then the end of the current page (a comment marks the cut),

and never the system prompt, the persona or the action history: if those alone exceed the budget,
it raises `ContextBudgetError` with the number of tokens they need. Token counts are exact: every
candidate is rendered with the chat template and tokenized, and the cut points are found by binary
search (about log2(pages) + log2(characters) tokenizations, not one per character).

    >>> built = build_prompt(observation, tokenizer, max_tokens=2048, max_new_tokens=96)  # doctest: +SKIP
    >>> built.n_tokens <= 2048 - 96, built.dropped  # doctest: +SKIP
    (True, Dropped(pages=3, page_chars=0))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents.prompts import build_messages

CONTEXT_MODES = ("whole", "latest")
DEFAULT_MAX_TOKENS = 32_768
"""The paper's context length (section 4.1)."""


def truncation_note(chars_cut: int) -> str:
    """Marks where the current page was cut, so the model knows the page continues."""
    return f"\n<!-- {chars_cut} more characters of this page were cut to fit the context budget -->"


class ContextBudgetError(ValueError):
    """The parts that are never cut (instructions, persona, action history) alone exceed the budget."""


@dataclass(frozen=True)
class Dropped:
    """What `build_prompt` cut to fit the budget."""

    pages: int = 0
    """How many of the oldest earlier pages had their HTML replaced by a placeholder."""
    page_chars: int = 0
    """How many characters were cut from the end of the current page."""

    def __bool__(self) -> bool:
        return bool(self.pages or self.page_chars)


@dataclass(frozen=True)
class BuiltPrompt:
    """A prompt ready for a chat model."""

    messages: list[dict[str, str]]
    """The chat: system prompt + user message."""
    text: str
    """`messages` rendered with the tokenizer's chat template and the assistant turn opened."""
    n_tokens: int
    """Exact length of `text` in tokens (tokenized without adding special tokens: the template has them)."""
    dropped: Dropped
    """What was cut to fit the budget."""


def render(messages: list[dict[str, str]], tokenizer: Any) -> str:
    """The chat template applied with the generation prompt, as text."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template; "
            "load it with agents.models.load_model_and_tokenizer or prepare_tokenizer, which add one"
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def count_tokens(text: str, tokenizer: Any) -> int:
    """Tokens in an already-templated text, as the policy will feed it to the model."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _observation_for(observation: Mapping[str, Any], context: str | None) -> Mapping[str, Any]:
    if context is None:
        return observation
    if context not in CONTEXT_MODES:
        raise ValueError(f"context must be one of {CONTEXT_MODES} or None, got {context!r}")
    if context == "latest":
        return {**observation, "past_pages": ()}
    if len(observation["past_pages"]) != len(observation["past_actions"]):
        raise ValueError(
            f"context='whole' needs one past page per past action, but the observation of session "
            f"{observation.get('session_id')!r} step {observation.get('step_index')} has "
            f"{len(observation['past_pages'])} pages for {len(observation['past_actions'])} actions; "
            "build it with observation_at(..., context='whole')"
        )
    return observation


def build_prompt(
    observation: Mapping[str, Any],
    tokenizer: Any,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    context: str | None = None,
    max_new_tokens: int = 0,
) -> BuiltPrompt:
    """The chat prompt for one observation, cut to `max_tokens - max_new_tokens` prompt tokens.

    `context=None` uses the observation as built (its `past_pages` is empty in latest-step mode);
    "latest" ignores its past pages; "whole" checks that it has them.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    budget = max_tokens - max_new_tokens
    if budget <= 0:
        raise ValueError(
            f"max_tokens={max_tokens} leaves no room for the prompt after max_new_tokens={max_new_tokens}; raise max_tokens"
        )
    observation = _observation_for(observation, context)
    pages: list[str] = list(observation["past_pages"])
    page: str = observation["page"]

    def attempt(pages_dropped: int, page_chars_kept: int) -> tuple[list[dict[str, str]], str, int]:
        kept_pages = [None] * pages_dropped + pages[pages_dropped:]
        cut = len(page) - page_chars_kept
        page_html = page if cut == 0 else page[:page_chars_kept] + truncation_note(cut)
        messages = build_messages(observation, page_html=page_html, past_pages=kept_pages)
        text = render(messages, tokenizer)
        return messages, text, count_tokens(text, tokenizer)

    def built(pages_dropped: int, page_chars_kept: int, result) -> BuiltPrompt:
        messages, text, n_tokens = result
        return BuiltPrompt(messages, text, n_tokens, Dropped(pages_dropped, len(page) - page_chars_kept))

    full = attempt(0, len(page))
    if full[2] <= budget:
        return built(0, len(page), full)

    # 1. Drop the oldest pages: find the fewest drops that fit (token count falls as drops rise).
    all_dropped = attempt(len(pages), len(page)) if pages else full
    if all_dropped[2] <= budget:
        low, high, best = 0, len(pages), all_dropped  # attempt(low) does not fit, attempt(high) does
        while high - low > 1:
            middle = (low + high) // 2
            candidate = attempt(middle, len(page))
            if candidate[2] <= budget:
                high, best = middle, candidate
            else:
                low = middle
        return built(high, len(page), best)

    # 2. Every earlier page is out and it still does not fit: keep the longest prefix of the current page that fits.
    floor = attempt(len(pages), 0)
    if floor[2] > budget:
        raise ContextBudgetError(
            f"session {observation.get('session_id')!r} step {observation.get('step_index')}: the instructions, "
            f"persona and action history alone take {floor[2]} tokens, over the budget of {budget} "
            f"(max_tokens={max_tokens} - max_new_tokens={max_new_tokens}); raise max_tokens"
        )
    low, high, best = 0, len(page), floor  # keeping `low` characters fits, keeping `high` does not
    while high - low > 1:
        middle = (low + high) // 2
        candidate = attempt(len(pages), middle)
        if candidate[2] <= budget:
            low, best = middle, candidate
        else:
            high = middle
    # End the kept part at a tag or line boundary rather than inside an element, when that still fits.
    boundary = max(page.rfind(">", 0, low), page.rfind("\n", 0, low)) + 1
    if 0 < boundary < low:
        candidate = attempt(len(pages), boundary)
        if candidate[2] <= budget:
            return built(len(pages), boundary, candidate)
    return built(len(pages), low, best)
