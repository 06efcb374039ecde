"""The response format: what parses, what fails and with which message, and that nothing raises."""

from __future__ import annotations

import json

import pytest

from shop_env.response_format import (
    EXAMPLE_RESPONSES,
    MAX_RESPONSE_CHARS,
    ParsedResponse,
    format_response,
    json_body_span,
    parse_action_object,
    parse_response,
)
from shop_env.session import ACTION_TYPES, CLICK, TERMINATE, TYPE_AND_SUBMIT, Action

SEARCH = Action(TYPE_AND_SUBMIT, name="header.search_box.search_input", text="running shoes")


def test_every_example_response_parses_to_its_action():
    assert set(EXAMPLE_RESPONSES) == set(ACTION_TYPES)
    for kind, example in EXAMPLE_RESPONSES.items():
        parsed = parse_response(json.dumps(example))
        assert parsed.ok and parsed.error is None
        assert parsed.action.type == kind and parsed.rationale == example["rationale"]


@pytest.mark.parametrize(
    "action", [SEARCH, Action(CLICK, name="product_form.add_to_cart"), Action(TERMINATE)], ids=str
)
def test_format_response_round_trips(action):
    text = format_response("Ça me plaît — \"quoted\" 日本", action)
    assert parse_response(text) == ParsedResponse("Ça me plaît — \"quoted\" 日本", action)


def test_format_response_drops_extra_keys():
    action = Action(CLICK, name="a.b", extra={"click_type": "left"})
    assert json.loads(format_response("r", action))["action"] == {"type": "click", "name": "a.b"}


@pytest.mark.parametrize(
    "wrapper",
    ["{}", "  \n{}\n\t", "```json\n{}\n```", "```\n{}\n```", "\n```JSON \r\n{}\r\n```\n", "```json\n  {}  \n```"],
)
def test_whitespace_and_one_code_fence_are_accepted(wrapper):
    body = format_response("ok", SEARCH)
    parsed = parse_response(wrapper.replace("{}", body))
    assert parsed.ok and parsed.action == SEARCH
    start, end = json_body_span(wrapper.replace("{}", body))
    assert wrapper.replace("{}", body)[start:end] == body


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty response"),
        ("```json\n\n```", "empty response"),
        ('{"rationale": "x"}', "no 'action' object"),
        ('{"rationale": "x", "action": null}', "no 'action' object"),
        ('{"rationale": "x", "action": {}}', "has no 'type'"),
        ('{"rationale": "x", "action": {"type": "Click"}}', "unknown action type 'Click'"),
        ('{"rationale": "x", "action": {"type": 7}}', "unknown action type '7'"),
        ('{"action": {"type": "terminate"}}', "'rationale' is missing"),
        ('{"rationale": ["x"], "action": {"type": "terminate"}}', "'rationale' is list"),
        ('[{"rationale": "x", "action": {"type": "terminate"}}]', "top-level JSON is list"),
        ('{"rationale": "x", "action": {"type": "terminate"}} and more', "not '}': cut off, or text after it"),
        ('{"rationale": "x", "action": {"type": "terminate"}} {}', "Extra data"),
        ('{"rationale": "x", "action": {"type": "click", "name": "a.b"', "not one JSON object"),
        ("``` {} ```", "not one JSON object"),
        ("```json\n{}\n```\n```json\n{}\n```", "not one JSON object"),
        ("[" * 50_000, "nested too deeply"),
        ("x" * (MAX_RESPONSE_CHARS + 1), "over the 100,000 limit"),
    ],
)
def test_failures_say_why(text, message):
    parsed = parse_response(text)
    assert not parsed.ok and parsed.action is None
    assert message in parsed.error


@pytest.mark.parametrize("value", [None, 3, b'{"rationale": "x"}', ["x"]])
def test_non_strings_fail_without_raising(value):
    parsed = parse_response(value)
    assert not parsed.ok and "not a string" in parsed.error


def test_rationale_is_kept_when_only_the_action_fails():
    assert parse_response('{"rationale": "why", "action": {"type": "fly"}}').rationale == "why"


def test_missing_or_non_string_values_become_empty_but_keep_the_format():
    parsed = parse_response('{"rationale": "", "action": {"type": "type_and_submit", "name": 5}}')
    assert parsed.ok and parsed.action == Action(TYPE_AND_SUBMIT, name="", text="")


def test_keys_a_type_does_not_take_are_ignored():
    parsed = parse_response('{"rationale": "r", "action": {"type": "terminate", "name": "x", "text": 1}}')
    assert parsed.action == Action(TERMINATE)


def test_duplicate_keys_follow_json_loads():
    parsed = parse_response('{"rationale": "a", "rationale": "b", "action": {"type": "terminate"}}')
    assert parsed.rationale == "b"


def test_lone_surrogates_and_escapes_parse():
    parsed = parse_response('{"rationale": "\\ud800 raw \ud800", "action": {"type": "click", "name": "\\udfff"}}')
    assert parsed.ok and parsed.rationale == "\ud800 raw \ud800" and parsed.action.name == "\udfff"


def test_action_values_over_the_limit_fail():
    action, error = parse_action_object({"type": "click", "name": "n" * (MAX_RESPONSE_CHARS + 1)})
    assert action is None and "'name' is 100,001 characters" in error
    assert parse_action_object({"type": "click", "name": "n" * MAX_RESPONSE_CHARS})[0] is not None


def test_limit_is_configurable():
    text = format_response("r", Action(TERMINATE))
    assert not parse_response(text, max_chars=len(text) - 1).ok
    assert parse_response(text, max_chars=len(text)).ok
