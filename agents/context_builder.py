"""Whole-session and latest-step prompts that fit a token budget, counted with the model's own tokenizer.

The paper pads/truncates contexts to 32k tokens; pages are large (OPeRA: ~100k characters at the
median), so a whole-session prompt rarely fits as is. When it does not, `build_prompt` cuts in this
order, and reports what it cut:

1. the oldest earlier pages' HTML (each replaced by a one-line placeholder; its action stays),
2. then the end of the current page (a comment marks the cut),

and never the system prompt, the persona or the action history: if those alone exceed the budget,
it raises `ContextBudgetError` with the number of tokens they need. Token counts are exact: every
candidate is rendered with the chat template and tokenized. The cut points are guessed from the
pages' own token counts (newest first, stopping once the budget is spent) and then confirmed by a
galloping search around the guess: a handful of tokenizations of budget-sized prompts, never one per
character, and never the whole uncut history of a session far over the budget nor the whole of a
page far longer than it (no text over `MAX_CHARS_PER_TOKEN` characters per budget token is tokenized).

    >>> built = build_prompt(observation, tokenizer, context_window=2048, max_new_tokens=96)  # doctest: +SKIP
    >>> built.n_tokens <= 2048 - 96, built.dropped  # doctest: +SKIP
    (True, Dropped(pages=3, page_chars=0))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shop_env.atomic_io import writable
from shop_env.replay_env import check_context

from agents.prompts import PAGE_OMITTED, build_messages

DEFAULT_CONTEXT_WINDOW = 32_768
"""The paper's context length (section 4.1)."""
MAX_CHARS_PER_TOKEN = 32
"""A generous bound on characters per token: a text longer than this many characters per budget
token is taken not to fit and is never tokenized, so a 20 MB page costs about a budget's worth of
tokenization, not the whole page. Simplified HTML runs ~3.4 characters per token (SmolLM2's longest
token is 81 characters, a run of spaces); only text averaging over 32 could fit and be cut anyway."""
FULL_ATTEMPT_CHARS_PER_TOKEN = 3
"""Try the uncut prompt first when its pages hold at most this many characters per budget token.
Simplified HTML runs ~3.4 characters per token (SmolLM2 tokenizer, benchmarks/context_building.py), so
such a prompt nearly always fits and costs one tokenization; longer ones go straight to the search."""


def truncation_note(chars_cut: int) -> str:
    """Marks where the current page was cut, so the model knows the page continues."""
    return f"\n<!-- {chars_cut} more characters of this page were cut to fit the context budget -->"


@dataclass(frozen=True)
class PromptBudget:
    """How a prompt is cut to fit: the one setting SFT, GRPO, prepare-verl and every LLM policy share, so
    training and evaluation prompts are the same ones (`build`)."""

    context: str | None = "whole"
    """'whole' (past pages + past actions + current page), 'latest' (past actions + current page), or None:
    the observation as the env built it."""
    context_window: int = DEFAULT_CONTEXT_WINDOW
    """Prompt + response tokens (paper: 32k); the prompt gets `context_window - max_new_tokens`, and the
    oldest past pages go first, then the end of the current page, to fit."""
    max_new_tokens: int = 256
    """Tokens kept for the response; evaluation must keep as many as training did for the same prompts."""

    def __post_init__(self):
        check_context(self.context, allow_none=True)
        if self.context_window < 64:
            raise ValueError(f"context_window={self.context_window} is too small for the system prompt; use >= 64")
        if not 1 <= self.max_new_tokens < self.context_window:
            raise ValueError(
                f"max_new_tokens={self.max_new_tokens} must be >= 1 and below context_window={self.context_window}, "
                "which must leave room for the prompt"
            )

    def build(self, observation: Mapping[str, Any], tokenizer: Any) -> BuiltPrompt:
        return build_prompt(observation, tokenizer, context_window=self.context_window, context=self.context,
                            max_new_tokens=self.max_new_tokens)


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
    """The chat template applied with the generation prompt, as text.

    A lone surrogate from the data (JSON can carry one; tokenizers refuse it) is shown as its \\udXXX
    escape (`shop_env.atomic_io.writable`), as the result files record it."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template; "
            "load it with agents.models.load_model_and_tokenizer or prepare_tokenizer, which add one"
        )
    return writable(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def count_tokens(text: str, tokenizer: Any) -> int:
    """Tokens in an already-templated text, as the policy will feed it to the model."""
    return len(tokenizer(writable(text), add_special_tokens=False)["input_ids"])


def _observation_for(observation: Mapping[str, Any], context: str | None) -> Mapping[str, Any]:
    if context is None:
        return observation
    check_context(context, allow_none=True)
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
    context_window: int = DEFAULT_CONTEXT_WINDOW,
    context: str | None = None,
    max_new_tokens: int = 0,
) -> BuiltPrompt:
    """The chat prompt for one observation, cut to `context_window - max_new_tokens` prompt tokens.

    `context=None` uses the observation as built (its `past_pages` is empty in latest-step mode);
    "latest" ignores its past pages; "whole" checks that it has them.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    budget = context_window - max_new_tokens
    if budget <= 0:
        raise ValueError(
            f"context_window={context_window} leaves no room for the prompt after max_new_tokens={max_new_tokens}; raise context_window"
        )
    observation = _observation_for(observation, context)
    pages: list[str] = list(observation["past_pages"])
    page: str = observation["page"]

    # Text over MAX_CHARS_PER_TOKEN characters a budget token cannot fit: never tokenized, and when
    # its pages alone are that long, never rendered either.
    limit = MAX_CHARS_PER_TOKEN * budget
    n_pages = len(pages)
    pages_chars = [0] * (n_pages + 1)  # pages_chars[k]: characters of pages[k:]
    for index in reversed(range(n_pages)):
        pages_chars[index] = pages_chars[index + 1] + len(pages[index])
    tried: dict[tuple[int, int], tuple[list[dict[str, str]] | None, str | None, int | None]] = {}

    def attempt(pages_dropped: int, page_chars_kept: int) -> tuple[list[dict[str, str]] | None, str | None, int | None]:
        """(messages, text, tokens); tokens None when the text is over the character bound."""
        key = (pages_dropped, page_chars_kept)
        if key not in tried:
            if page_chars_kept + pages_chars[pages_dropped] > limit:
                tried[key] = (None, None, None)
                return tried[key]
            kept_pages = [None] * pages_dropped + pages[pages_dropped:]
            cut = len(page) - page_chars_kept
            page_html = page if cut == 0 else page[:page_chars_kept] + truncation_note(cut)
            messages = build_messages(observation, page_html=page_html, past_pages=kept_pages)
            text = render(messages, tokenizer)
            tried[key] = (messages, text, count_tokens(text, tokenizer) if len(text) <= limit else None)
        return tried[key]

    def fits(pages_dropped: int, page_chars_kept: int) -> bool:
        n_tokens = attempt(pages_dropped, page_chars_kept)[2]
        return n_tokens is not None and n_tokens <= budget

    def built(pages_dropped: int, page_chars_kept: int) -> BuiltPrompt:
        messages, text, n_tokens = attempt(pages_dropped, page_chars_kept)
        return BuiltPrompt(messages, text, n_tokens, Dropped(pages_dropped, len(page) - page_chars_kept))

    # Most prompts fit as they are: try that first when the text is at most a few budgets long. A long
    # session is searched from the smallest prompt with the whole current page instead, so the pages
    # read are about a budget's worth, however far over the budget the uncut history is.
    if len(page) + pages_chars[0] <= FULL_ATTEMPT_CHARS_PER_TOKEN * budget and fits(0, len(page)):
        return built(0, len(page))
    if fits(n_pages, len(page)):
        # 1. Restore earlier pages newest first while they fit: the fewest drops (most recent pages kept).
        spare = budget - attempt(n_pages, len(page))[2]
        placeholder = count_tokens(PAGE_OMITTED, tokenizer)
        guess = n_pages
        for index in reversed(range(n_pages)):
            if len(pages[index]) > MAX_CHARS_PER_TOKEN * (spare + placeholder):
                break  # too long to fit in what is left: not worth tokenizing
            spare -= count_tokens(pages[index], tokenizer) - placeholder  # estimate: joins shift a token or two
            if spare < 0:
                break
            guess = index
        dropped = _smallest_true(lambda k: fits(k, len(page)), 0, n_pages, guess)
        return built(dropped, len(page))

    # 2. Every earlier page is out and it still does not fit: keep the longest prefix of the current page that fits.
    if not fits(n_pages, 0):
        _, text, n_tokens = attempt(n_pages, 0)
        need = f"{n_tokens} tokens" if n_tokens is not None else f"more than {budget} tokens ({len(text):,} characters)"
        raise ContextBudgetError(
            f"session {observation.get('session_id')!r} step {observation.get('step_index')}: the instructions, "
            f"persona and action history alone take {need}, over the budget of {budget} "
            f"(context_window={context_window} - max_new_tokens={max_new_tokens}); raise context_window"
        )
    spare = budget - attempt(n_pages, 0)[2] - count_tokens(truncation_note(len(page)), tokenizer)
    head = page[: MAX_CHARS_PER_TOKEN * max(spare, 0)]
    chars_cut = _smallest_true(
        lambda cut: fits(n_pages, len(page) - cut), 0, len(page), len(page) - _chars_within(head, spare, tokenizer)
    )
    low = len(page) - chars_cut
    # End the kept part at a tag or line boundary rather than inside an element, when that still fits.
    boundary = max(page.rfind(">", 0, low), page.rfind("\n", 0, low)) + 1
    if 0 < boundary < low and fits(n_pages, boundary):
        return built(n_pages, boundary)
    return built(n_pages, low)


def _chars_within(text: str, tokens: int, tokenizer: Any) -> int:
    """About how many leading characters of `text` make `tokens` tokens (a starting guess, not exact)."""
    if tokens <= 0:
        return 0
    if getattr(tokenizer, "is_fast", False):
        offsets = tokenizer(writable(text), add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return len(text) if tokens >= len(offsets) else offsets[tokens][0]
    total = count_tokens(text, tokenizer)
    return len(text) if tokens >= total else len(text) * tokens // max(total, 1)


def _smallest_true(predicate: Callable[[int], bool], low: int, high: int, guess: int) -> int:
    """The smallest x in [low, high] with predicate(x), for a predicate false then true as x grows.

    predicate(high) must hold. The search starts at `guess` and gallops away from it (1, 2, 4, ...)
    before bisecting, so a guess within a few of the answer costs a handful of calls even when the
    range spans hundreds of thousands of characters.
    """
    guess = min(max(guess, low), high)
    step = 1
    if predicate(guess):  # invariant: predicate(high) holds, nothing below `low` does
        high = guess
        while high > low:
            probe = max(low, high - step)
            if not predicate(probe):
                low = probe + 1
                break
            high, step = probe, step * 2
    else:
        low = guess + 1
        while low < high:
            probe = min(high, low + step - 1)
            if predicate(probe):
                high = probe
                break
            low, step = probe + 1, step * 2
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return high
