"""A 5 MB raw page goes through simplify_html, the env and the context builder, whole and correct.

Speed and peak memory are measured in `benchmarks/large_inputs.py`, not here; these tests check what
large inputs must not break: every interactive element named once, no script text left, no page
copied per step, and a prompt cut to the budget with the cut marked.
"""

from __future__ import annotations

import pytest

from agents.context_builder import build_prompt, truncation_note
from benchmarks.large_inputs import FIVE_MB, noisy_shop_page
from shop_env.replay_env import SessionReplayEnv, observation_at
from shop_env.response_format import format_response
from shop_env.session import CLICK, TERMINATE, Action, Session, Step
from shop_env.simplify_html import interactive_elements, simplify_html


@pytest.fixture(scope="module")
def raw_page() -> str:
    return noisy_shop_page(FIVE_MB, seed=3)


@pytest.fixture(scope="module")
def simplified(raw_page) -> str:
    return simplify_html(raw_page)


@pytest.fixture(scope="module")
def session(simplified) -> Session:
    names = interactive_elements(simplified)
    steps = [Step(observation=simplified, action=Action(CLICK, name=names[i * 97])) for i in range(3)]
    return Session("five-mb", steps + [Step(observation=simplified, action=Action(TERMINATE))])


def test_simplify_keeps_every_element_named_once_and_drops_the_noise(raw_page, simplified):
    assert len(raw_page) >= FIVE_MB
    names = interactive_elements(simplified)
    assert len(names) > 10_000 and len(set(names)) == len(names)
    assert "<script" not in simplified and "<style" not in simplified and "display:none" not in simplified
    assert "margin:" not in simplified and "data-index" not in simplified
    assert len(simplified) < len(raw_page) / 2
    assert simplify_html(simplified) == simplified


def test_env_replays_five_mb_pages_without_copying_them(session):
    env = SessionReplayEnv([session], context="whole")
    observation, _ = env.reset(options={"index": 0})
    for index, step in enumerate(session.steps):
        assert observation["page"] is step.observation
        assert all(page is step.observation for page in observation["past_pages"])
        observation, reward, terminated, _, info = env.step(format_response("ok", step.action))
        assert info["parse_error"] is None and reward > 0
    assert terminated and len(observation["past_pages"]) == len(session.steps)


def test_context_builder_cuts_a_five_mb_page_to_the_budget(session, tiny_tokenizer):
    built = build_prompt(observation_at(session, 0, "whole"), tiny_tokenizer, context_window=32_768, max_new_tokens=256)
    assert built.n_tokens <= 32_768 - 256
    assert built.dropped.page_chars > 0
    assert truncation_note(built.dropped.page_chars) in built.text
    kept = len(session.steps[0].observation) - built.dropped.page_chars
    assert session.steps[0].observation[:kept] in built.text


def test_context_builder_work_follows_the_budget_not_the_history(tiny_tokenizer):
    """Deterministic stand-in for speed: the characters build_prompt hands to the tokenizer stay the
    same when the history doubles (the prompt is the same size; only older pages are dropped)."""
    from benchmarks.context_building import CountingTokenizer
    from benchmarks.large_inputs import large_session

    history = large_session(n_steps=120, page_chars=10_000)
    work = {}
    for last in (59, 119):
        counting = CountingTokenizer(tiny_tokenizer)
        # A budget that holds the whole current page at both lengths: at 8,192 tokens the lean prompt
        # keeps it whole at step 59 but cuts it at 119, which compares two different searches.
        built = build_prompt(observation_at(history, last, "whole"), counting, context_window=16_384)
        assert built.dropped.pages > last - 5 and built.n_tokens <= 16_384
        work[last] = counting.chars
    history_chars = sum(len(step.observation) for step in history.steps[:59])
    assert work[119] < 1.25 * work[59], work
    assert work[59] < history_chars, (work, history_chars)
