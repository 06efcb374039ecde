"""The model's response format, defined once: the prompt, the parser, the reward and data prep use it.

A response is one JSON object (docs/contract.md, the task and the response):

    {"rationale": "<short first-person reason>", "action": {"type": "click", "name": "<element name>"}}

`parse_response` is lenient only where the paper is: surrounding whitespace and one markdown code fence
are accepted; anything else that is not exactly one such object fails the format (and then scores 0).
It never raises, whatever the string.
Text that cannot be one object (prose, a cut-off object) fails with a message that says so before
`json.loads` reads the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


from shop_env.session import ACTION_FIELDS, ACTION_TYPES, CLICK, TERMINATE, TYPE_AND_SUBMIT, Action

RATIONALE_KEY = "rationale"
ACTION_KEY = "action"
MAX_RESPONSE_CHARS = 100_000
"""Longer responses fail the format without being parsed: a policy's answer is a few hundred
characters, and parsing megabytes inside an RL loop would only reward rambling with latency."""

EXAMPLE_RESPONSES: dict[str, dict] = {
    CLICK: {
        RATIONALE_KEY: "The second pair looks closest to what I want, so I'll open it.",
        ACTION_KEY: {"type": CLICK, "name": "search_results.trail_runner_pro.view_product"},
    },
    TYPE_AND_SUBMIT: {
        RATIONALE_KEY: "I need new running shoes, so I'll search for them.",
        ACTION_KEY: {
            "type": TYPE_AND_SUBMIT,
            "name": "header.search_box.search_input",
            "text": "running shoes",
        },
    },
    TERMINATE: {
        RATIONALE_KEY: "Nothing here fits my budget, so I'm leaving.",
        ACTION_KEY: {"type": TERMINATE},
    },
}
"""One valid response per action type, shown to the model in the prompt and used by tests."""

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\r?\n(?P<body>.*?)\r?\n?```\Z", re.DOTALL)


class ParsedResponse(NamedTuple):
    """What a response said. `action` is None exactly when the format failed; `error` says why."""

    rationale: str | None
    action: Action | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.action is not None


def format_response(rationale: str, action: Action) -> str:
    """The canonical serialization of a (rationale, action) pair: the SFT target and the oracle's text."""
    return json.dumps({RATIONALE_KEY: rationale, ACTION_KEY: action.response_object}, ensure_ascii=False)


def json_body_span(text: str) -> tuple[int, int]:
    """Where the JSON body sits in `text`: inside surrounding whitespace and one optional code fence.

    Offsets index the original string, so token offsets of the raw response can be matched against
    positions found in the body (the self-certainty rationale mask needs this).
    """
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    # The fence regex scans the whole text when it fails; most texts can be ruled out by their ends.
    fenced = text.startswith("```", start) and text.endswith("```", start, end) and _FENCE.match(text, start, end)
    if fenced:
        start, end = fenced.span("body")
        body = text[start:end]
        start += len(body) - len(body.lstrip())
        end -= len(body) - len(body.rstrip())
    return start, max(start, end)


def parse_action_object(raw: object) -> tuple[Action | None, str | None]:
    """A predicted action from its JSON object: (action, None), or (None, why it is not one).

    Predicted `name`/`text` values that are missing or not strings become "" (the format still holds,
    the attribute reward then sees an empty value); keys an action type does not take are ignored.
    A value longer than `MAX_RESPONSE_CHARS` fails, as a response that long would: actions handed
    over as objects (`score_action`, the env) must not spend seconds in ROUGE-L either.

    >>> parse_action_object({"type": "click"})
    (Action(type='click', name='', text=None), None)
    >>> parse_action_object({"type": "scroll"})[1]
    "unknown action type 'scroll'; expected one of click, type_and_submit, terminate"
    """
    if not isinstance(raw, Mapping):
        return None, f"no '{ACTION_KEY}' object"
    kind = raw.get("type")
    if kind is None:
        return None, f"the action has no 'type'; expected one of {', '.join(ACTION_TYPES)}"
    if not isinstance(kind, str) or kind not in ACTION_TYPES:
        return None, (
            f"unknown action type {str(kind)[:40]!r}; expected one of {', '.join(ACTION_TYPES)}"
        )
    values = {}
    for key in ACTION_FIELDS[kind]:
        value = raw.get(key)
        if isinstance(value, str) and len(value) > MAX_RESPONSE_CHARS:
            return None, (
                f"action '{key}' is {len(value):,} characters, over the {MAX_RESPONSE_CHARS:,} limit"
            )
        values[key] = value if isinstance(value, str) else ""
    return Action(type=kind, **values), None


_JSON_VALUE_STARTS = frozenset('{["-0123456789tfn')
"""First characters of JSON values: a body starting otherwise (prose) is not one."""


def _json_loads_verdict(body: str) -> tuple[object, str | None]:
    """(value, None), or (None, why it is not JSON) in the standard library's words."""
    try:
        return json.loads(body), None
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as err:
        message = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
        position = f" at char {err.pos}" if isinstance(err, json.JSONDecodeError) else ""
        return None, f"not one JSON object ({message}{position})"


def parse_response(text: object, *, max_chars: int = MAX_RESPONSE_CHARS) -> ParsedResponse:
    """Parse a model response into (rationale, action); never raises.

    The format holds when the response is one JSON object with a string `rationale` and an `action`
    object whose `type` is a known action type (see `parse_action_object` for its fields).

    >>> parse_response('{"rationale": "Done.", "action": {"type": "terminate"}}').action
    Action(type='terminate', name=None, text=None)
    >>> parse_response('{"rationale": "x"}').error
    "no 'action' object"
    """
    if not isinstance(text, str):
        return ParsedResponse(None, None, f"response is {type(text).__name__}, not a string")
    if len(text) > max_chars:
        return ParsedResponse(None, None, f"response is {len(text):,} characters, over the {max_chars:,} limit")
    start, end = json_body_span(text)
    body = text[start:end]
    if not body:
        return ParsedResponse(None, None, "empty response")
    if body[0] == "{" and body[-1] != "}":
        return ParsedResponse(None, None, f"not one JSON object (it ends with {body[-20:]!r}, not '}}': cut off, or text after it)")
    if body[0] not in _JSON_VALUE_STARTS:
        return ParsedResponse(None, None, f"not one JSON object (it starts with {body[:20]!r})")
    data, error = _json_loads_verdict(body)
    if error is not None:
        return ParsedResponse(None, None, error)
    if not isinstance(data, dict):
        return ParsedResponse(None, None, f"top-level JSON is {type(data).__name__}, expected an object")
    rationale = data.get(RATIONALE_KEY)
    if not isinstance(rationale, str):
        found = "missing" if rationale is None else type(rationale).__name__
        return ParsedResponse(None, None, f"'{RATIONALE_KEY}' is {found}, expected a string")
    action, error = parse_action_object(data.get(ACTION_KEY))
    return ParsedResponse(rationale, action, error)


def response_schema(names: Sequence[str] | None = None) -> dict[str, Any]:
    """The response format as a JSON Schema: what constrained decoding forces and `/schema` serves.

    With `names` (the current page's interactive elements), an action's `name` must be one of them;
    a page with none leaves terminate as the only action. Keys appear in the order the prompt shows.
    """
    name: dict[str, Any] = {"type": "string"}
    if names is not None:
        name = {"enum": list(dict.fromkeys(names))}
    variants = []
    for kind, fields in ACTION_FIELDS.items():
        if fields and names is not None and not names:
            continue
        properties: dict[str, Any] = {"type": {"const": kind}}
        if "name" in fields:
            properties["name"] = name
        if "text" in fields:
            properties["text"] = {"type": "string"}
        variants.append(
            {"type": "object", "properties": properties, "required": ["type", *fields], "additionalProperties": False}
        )
    return {
        "type": "object",
        "properties": {RATIONALE_KEY: {"type": "string"}, ACTION_KEY: {"anyOf": variants}},
        "required": [RATIONALE_KEY, ACTION_KEY],
        "additionalProperties": False,
    }


def page_response_schema(page: str) -> dict[str, Any]:
    """`response_schema` for one page: `name` one of its interactive elements (an empty page has none,
    which leaves terminate)."""
    from shop_env.simplify_html import interactive_elements

    return response_schema(interactive_elements(page) if page.strip() else [])
