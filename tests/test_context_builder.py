"""Prompts within a token budget: what is cut, in which order, with exact token counts."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.context_builder import ContextBudgetError, Dropped, _smallest_true, build_prompt, count_tokens, render
from agents.prompts import PAGE_OMITTED, SYSTEM_PROMPT, build_messages
from shop_env.replay_env import observation_at


def _template_tokens(messages, tokenizer) -> int:
    """Token count straight from the chat template, independent of build_prompt's own counting."""
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    return len(ids)


@pytest.fixture()
def whole_observation(fixture_sessions):
    return observation_at(fixture_sessions[0], 4, "whole")  # four past pages + the current one


def test_prompt_that_fits_is_untouched_and_counted_exactly(whole_observation, tiny_tokenizer):
    built = build_prompt(whole_observation, tiny_tokenizer)
    assert built.dropped == Dropped() and not built.dropped
    assert built.messages == build_messages(whole_observation)
    assert built.text == render(built.messages, tiny_tokenizer)
    assert built.text.endswith("<|im_start|>assistant\n")
    assert built.n_tokens == _template_tokens(built.messages, tiny_tokenizer)


@pytest.mark.parametrize("pages_to_drop", [1, 2, 4])
def test_oldest_pages_go_first_and_no_more_than_needed(whole_observation, tiny_tokenizer, pages_to_drop):
    pages = list(whole_observation["past_pages"])
    target = build_messages(whole_observation, past_pages=[None] * pages_to_drop + pages[pages_to_drop:])
    budget = _template_tokens(target, tiny_tokenizer)
    built = build_prompt(whole_observation, tiny_tokenizer, context_window=budget + 10, max_new_tokens=10)
    assert built.dropped == Dropped(pages=pages_to_drop, page_chars=0)
    assert built.messages == target
    assert built.n_tokens == budget
    user = built.messages[1]["content"]
    assert user.count(PAGE_OMITTED) == pages_to_drop
    for page in pages[pages_to_drop:]:
        assert page in user


def test_current_page_is_shortened_from_the_end_after_all_past_pages(whole_observation, tiny_tokenizer):
    no_pages = build_messages(whole_observation, past_pages=[None] * 4)
    budget = _template_tokens(no_pages, tiny_tokenizer) - 150
    built = build_prompt(whole_observation, tiny_tokenizer, context_window=budget)
    assert built.dropped.pages == 4 and built.dropped.page_chars > 0
    assert built.n_tokens == _template_tokens(built.messages, tiny_tokenizer) <= budget
    system, user = (m["content"] for m in built.messages)
    assert system == SYSTEM_PROMPT
    page = whole_observation["page"]
    kept = len(page) - built.dropped.page_chars
    assert page[:kept] in user and page[: kept + 1] not in user
    assert f"{built.dropped.page_chars} more characters of this page were cut" in user
    for action in whole_observation["past_actions"]:
        assert action in user
    roomier = build_prompt(whole_observation, tiny_tokenizer, context_window=budget + 100)
    assert roomier.dropped.page_chars < built.dropped.page_chars


def test_reserved_new_tokens_count_against_the_budget(whole_observation, tiny_tokenizer):
    full = build_prompt(whole_observation, tiny_tokenizer)
    assert not build_prompt(whole_observation, tiny_tokenizer, context_window=full.n_tokens).dropped
    assert build_prompt(whole_observation, tiny_tokenizer, context_window=full.n_tokens, max_new_tokens=1).dropped


def test_instructions_and_history_are_never_cut(whole_observation, tiny_tokenizer):
    floor = build_messages(whole_observation, page_html="", past_pages=[None] * 4)
    with pytest.raises(ContextBudgetError, match="alone take .* tokens, over the budget of 99"):
        build_prompt(whole_observation, tiny_tokenizer, context_window=100, max_new_tokens=1)
    assert _template_tokens(floor, tiny_tokenizer) > 99


def test_latest_context_ignores_past_pages(whole_observation, fixture_sessions, tiny_tokenizer):
    forced = build_prompt(whole_observation, tiny_tokenizer, context="latest")
    native = build_prompt(observation_at(fixture_sessions[0], 4, "latest"), tiny_tokenizer)
    assert forced.text == native.text
    assert whole_observation["past_pages"][0] not in forced.text


def test_whole_context_rejects_a_latest_observation(fixture_sessions, tiny_tokenizer):
    with pytest.raises(ValueError, match="context='whole' needs one past page per past action"):
        build_prompt(observation_at(fixture_sessions[0], 2, "latest"), tiny_tokenizer, context="whole")


@pytest.mark.parametrize(("context_window", "max_new_tokens"), [(100, 100), (10, -1)])
def test_bad_budgets_are_rejected(whole_observation, tiny_tokenizer, context_window, max_new_tokens):
    with pytest.raises(ValueError, match="max_"):
        build_prompt(whole_observation, tiny_tokenizer, context_window=context_window, max_new_tokens=max_new_tokens)


def test_count_tokens_adds_no_special_tokens(tiny_tokenizer):
    assert count_tokens("<|im_start|>user", tiny_tokenizer) == len(tiny_tokenizer("<|im_start|>user", add_special_tokens=False)["input_ids"])


@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_smallest_true_finds_the_boundary_from_any_guess(data):
    low = data.draw(st.integers(0, 50))
    high = data.draw(st.integers(low, low + 5000))
    answer = data.draw(st.integers(low, high))
    guess = data.draw(st.integers(low - 10, high + 10))
    calls = []

    def predicate(x):
        assert low <= x <= high, "probes stay inside the range"
        calls.append(x)
        return x >= answer

    assert _smallest_true(predicate, low, high, guess) == answer
    assert len(calls) <= 2 * (high - low).bit_length() + 2


class CountingTokenizer:
    """Counts the characters a tokenizer reads, to check how much of a long session is tokenized."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self.chars = 0

    def __call__(self, text, *args, **kwargs):
        self.chars += len(text)
        return self._tokenizer(text, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def _long_observation(whole_observation, n_pages=40):
    pages = [f"<div name='p{i}'>" + " ".join(f"item{i}_{j}" for j in range(300)) + "</div>" for i in range(n_pages)]
    actions = [whole_observation["past_actions"][0]] * n_pages
    return {**whole_observation, "past_pages": tuple(pages), "past_actions": tuple(actions)}


def test_long_session_drops_exactly_the_oldest_pages_it_must(whole_observation, tiny_tokenizer):
    observation = _long_observation(whole_observation, n_pages=12)
    budget = 6000
    built = build_prompt(observation, tiny_tokenizer, context_window=budget)
    pages = list(observation["past_pages"])
    fitting = [
        k for k in range(len(pages) + 1)
        if _template_tokens(build_messages(observation, past_pages=[None] * k + pages[k:]), tiny_tokenizer) <= budget
    ]
    assert built.dropped == Dropped(pages=fitting[0], page_chars=0) and 0 < fitting[0] < len(pages)
    assert built.n_tokens == _template_tokens(built.messages, tiny_tokenizer)


def test_long_session_reads_about_a_budget_not_the_whole_history(whole_observation, tiny_tokenizer):
    observation = _long_observation(whole_observation, n_pages=120)
    history_chars = sum(map(len, observation["past_pages"]))
    counting = CountingTokenizer(tiny_tokenizer)
    built = build_prompt(observation, counting, context_window=9000)
    assert built.dropped.pages > 110
    assert counting.chars < history_chars / 4
