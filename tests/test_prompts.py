"""The system prompt and the user message built from an observation."""

import json

import pytest

from agents.context_builder import build_prompt
from agents.models import load_tokenizer
from agents.prompts import (
    FIXED_TOKENS_LIMIT,
    PAGE_OMITTED,
    PROMPT_EXAMPLE,
    SYSTEM_PROMPT,
    build_messages,
    build_user_message,
)
from shop_env.replay_env import observation_at
from shop_env.response_format import ACTION_KEY, EXAMPLE_RESPONSES, RATIONALE_KEY, parse_response
from shop_env.session import ACTION_FIELDS, ACTION_TYPES


def test_system_prompt_shows_one_parseable_example_response():
    example = json.dumps(PROMPT_EXAMPLE, ensure_ascii=False)
    assert example in SYSTEM_PROMPT
    assert parse_response(example).ok
    assert SYSTEM_PROMPT.count(f'"{RATIONALE_KEY}":') == 1, "one example, not one per action type"
    shown = [kind for kind, response in EXAMPLE_RESPONSES.items() if json.dumps(response, ensure_ascii=False) in SYSTEM_PROMPT]
    assert shown == [PROMPT_EXAMPLE[ACTION_KEY]["type"]]


def test_system_prompt_states_every_action_type_with_its_fields():
    lines = {line[2:].split(":")[0].split(" (")[0]: line for line in SYSTEM_PROMPT.splitlines() if line.startswith("- ")}
    assert sorted(lines) == sorted(ACTION_TYPES)
    for kind, fields in ACTION_FIELDS.items():
        assert all(field in lines[kind] for field in fields), lines[kind]


def test_system_prompt_describes_names_rationale_and_output_format():
    assert "`name` attribute" in SYSTEM_PROMPT
    assert "first-person" in SYSTEM_PROMPT
    assert "single JSON object" in SYSTEM_PROMPT
    assert f'"{RATIONALE_KEY}"' in SYSTEM_PROMPT and f'"{ACTION_KEY}"' in SYSTEM_PROMPT


def test_fixed_part_of_a_prompt_fits_in_its_smollm2_token_limit():
    """Chat template + system prompt + headers + final instruction, as the policy counts them: what a
    prompt costs before its persona, history and page, so what a 1,024-token context cannot give the page."""
    empty = {"persona": "", "page": "", "url": "", "past_pages": [], "past_actions": []}
    n_tokens = build_prompt(empty, load_tokenizer("smollm2")).n_tokens
    assert n_tokens <= FIXED_TOKENS_LIMIT, f"the fixed part takes {n_tokens} tokens"


def test_whole_session_message_pairs_each_past_page_with_its_action(fixture_sessions):
    session = fixture_sessions[0]
    observation = observation_at(session, 3, "whole")
    messages = build_messages(observation)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    user = messages[1]["content"]
    assert session.persona in user
    positions = []
    for step in session.steps[:3]:
        page_at = user.index(step.observation)
        action_at = user.index(step.action.to_json(), page_at)
        positions += [page_at, action_at]
    assert positions == sorted(positions), "pages and actions must alternate, oldest first"
    current_at = user.index("## Current page (step 4)")
    assert user.index(session.steps[3].observation, current_at) > positions[-1]
    assert session.steps[3].url in user


def test_latest_step_message_lists_actions_without_past_pages(fixture_sessions):
    session = fixture_sessions[0]
    user = build_user_message(observation_at(session, 2, "latest"))
    for step in session.steps[:2]:
        assert step.action.to_json() in user
    assert session.steps[0].observation not in user
    assert session.steps[2].observation in user


def test_first_step_and_unknown_persona_are_stated(fixture_sessions):
    session = fixture_sessions[1]
    user = build_user_message(observation_at(session, 0, "whole"))
    assert "## Earlier steps\nNone (first page)." in user
    assert "## Persona\nNot known." in user


def test_env_feedback_stays_out_so_eval_prompts_equal_training_prompts(fixture_sessions):
    training = observation_at(fixture_sessions[0], 1)
    after_a_failure = {**training, "last_action_error": "not one JSON object"}
    assert build_messages(after_a_failure) == build_messages(training)


def test_overrides_replace_pages_and_mark_omitted_ones(fixture_sessions):
    session = fixture_sessions[0]
    observation = observation_at(session, 2, "whole")
    user = build_user_message(observation, page_html="<p>short</p>", past_pages=[None, session.steps[1].observation])
    assert session.steps[0].observation not in user
    assert user.count(PAGE_OMITTED) == 1
    assert "<p>short</p>" in user and session.steps[2].observation not in user
    assert session.steps[0].action.to_json() in user, "the action of an omitted page stays"


def test_pages_and_actions_must_pair_up(fixture_sessions):
    observation = observation_at(fixture_sessions[0], 2, "whole")
    with pytest.raises(ValueError, match="1 past pages but 2 past actions"):
        build_user_message(observation, past_pages=["<p>x</p>"])
