"""The system prompt and the user message built from an observation."""

import json

import pytest

from agents.prompts import PAGE_OMITTED, SYSTEM_PROMPT, build_messages, build_user_message
from shop_env.replay_env import observation_at
from shop_env.response_format import EXAMPLE_RESPONSES, parse_response
from shop_env.session import ACTION_TYPES


def test_system_prompt_shows_every_action_type_with_a_parseable_example():
    for kind, example in EXAMPLE_RESPONSES.items():
        line = json.dumps(example, ensure_ascii=False)
        assert line in SYSTEM_PROMPT
        assert parse_response(line).action.type == kind
    for kind in ACTION_TYPES:
        assert f"`{kind}`" in SYSTEM_PROMPT


def test_system_prompt_describes_names_rationale_and_output_format():
    assert "`name` attribute" in SYSTEM_PROMPT
    assert "first person" in SYSTEM_PROMPT
    assert "single JSON object" in SYSTEM_PROMPT


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
    assert "first page of the session" in user
    assert "No persona is known" in user


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
