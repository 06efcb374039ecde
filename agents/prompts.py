"""The system prompt and chat messages that ask a model for the next (rationale, action) of a shopper.

The system prompt covers what the paper's Appendix B covers, in our own words and kept short: the
task (act as a person browsing a shopping site), the context (simplified HTML whose interactable
elements carry a unique `name`), the action types with their fields, the rationale (short, first
person) and the output format (a single JSON object), shown by one example response. The fixed part
of a prompt (system prompt, chat template, section headers, final instruction) stays within
`FIXED_TOKENS_LIMIT` SmolLM2 tokens, so that a CPU-sized context of 1,024 tokens is mostly page;
tests/test_prompts.py measures it. The keys, action types, fields and the example come from
`shop_env.response_format` and `shop_env.session`, the definitions the parser and the reward also use.

The user message holds the observation of `shop_env.replay_env.observation_at`: persona, earlier
steps (page + action in whole-session context, actions only in latest-step context) and the current
page. The env's `last_action_error` is deliberately left out: as in the paper, every step is
predicted from the human's own history (teacher forcing), and training prompts (built from
`observation_at`, where it is always "") must equal evaluation prompts. Small models also tend to
answer such a note instead of the page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from shop_env.response_format import ACTION_KEY, EXAMPLE_RESPONSES, RATIONALE_KEY
from shop_env.session import ACTION_FIELDS, ACTION_TYPES, CLICK, TERMINATE, TYPE_AND_SUBMIT

FIXED_TOKENS_LIMIT = 250
"""Most SmolLM2 tokens the fixed part of a prompt may take (chat template included)."""

PAGE_OMITTED = "(page omitted to fit the context budget)"
"""Stands in for an earlier page whose HTML the context builder dropped; its action is always kept."""

ACTION_DESCRIPTIONS = {
    TYPE_AND_SUBMIT: "type the text into that input and submit it, e.g. a search",
    CLICK: "click that element",
    TERMINATE: "leave the site",
}
"""What each action type does, in the prompt; its fields come from `ACTION_FIELDS`."""

PROMPT_EXAMPLE = EXAMPLE_RESPONSES[TYPE_AND_SUBMIT]
"""The one example response in the prompt: the type with the most fields, so it shows them all."""


def _action_line(kind: str) -> str:
    fields = f" ({', '.join(ACTION_FIELDS[kind])})" if ACTION_FIELDS[kind] else ""
    return f"- {kind}{fields}: {ACTION_DESCRIPTIONS[kind]}."


SYSTEM_PROMPT = f"""You are a person shopping online. Decide your next action, as a real shopper would.

Pages are simplified HTML. Each element you can use has a unique `name` attribute: refer to elements only by it.

Action types and their fields:
{chr(10).join(_action_line(kind) for kind in ACTION_TYPES)}

Reply with a single JSON object and nothing else: "{RATIONALE_KEY}" (a short first-person reason) and "{ACTION_KEY}". Example:
{json.dumps(PROMPT_EXAMPLE, ensure_ascii=False)}"""
"""The instructions every prompt starts with; the context builder never shortens them."""

FINAL_INSTRUCTION = "What do you do next? Reply with one JSON object."


def _current_page_block(html: str, url: str) -> str:
    return (f"URL: {url}\n" if url else "") + html


def build_user_message(
    observation: Mapping[str, Any],
    *,
    page_html: str | None = None,
    past_pages: Sequence[str | None] | None = None,
) -> str:
    """The user turn for one observation.

    `page_html` and `past_pages` override the observation's (the context builder passes shortened
    ones); a None entry in `past_pages` is a page dropped for the budget. Past actions always come
    from the observation and are never cut. An empty `past_pages` with earlier actions is the
    latest-step layout: the actions are listed without their pages.
    """
    page = observation["page"] if page_html is None else page_html
    pages = list(observation["past_pages"] if past_pages is None else past_pages)
    actions = list(observation["past_actions"])
    if pages and len(pages) != len(actions):
        raise ValueError(
            f"observation {observation.get('session_id')!r} step {observation.get('step_index')}: "
            f"{len(pages)} past pages but {len(actions)} past actions; whole-session context needs one page per action"
        )
    parts = [f"## Persona\n{observation.get('persona') or 'Not known.'}"]
    if not actions:
        parts.append("## Earlier steps\nNone (first page).")
    elif pages:
        steps = [
            f"### Step {number}\n{PAGE_OMITTED if html is None else html}\nYour action: {action}"
            for number, (html, action) in enumerate(zip(pages, actions, strict=True), start=1)
        ]
        parts.append("## Earlier steps\n" + "\n\n".join(steps))
    else:
        listed = "\n".join(f"{number}. {action}" for number, action in enumerate(actions, start=1))
        parts.append("## Your earlier actions (oldest first)\n" + listed)
    parts.append(f"## Current page (step {len(actions) + 1})\n" + _current_page_block(page, observation.get("url") or ""))
    parts.append(FINAL_INSTRUCTION)
    return "\n\n".join(parts)


def build_messages(
    observation: Mapping[str, Any],
    *,
    page_html: str | None = None,
    past_pages: Sequence[str | None] | None = None,
) -> list[dict[str, str]]:
    """Chat messages (system + user) for one observation; see `build_user_message` for the overrides."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": build_user_message(observation, page_html=page_html, past_pages=past_pages)},
    ]
