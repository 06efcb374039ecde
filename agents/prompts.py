"""The system prompt and chat messages that ask a model for the next (rationale, action) of a shopper.

The system prompt follows the structure of the paper's Appendix B in our own words: the task (act as
a person browsing a shopping site), the context (simplified HTML whose interactable elements carry a
unique `name`), the action space with one JSON example per type, the rationale (short, first
person) and the output format (a single JSON object). The examples come from
`shop_env.response_format.EXAMPLE_RESPONSES`, the one definition the parser and the reward also use.

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
from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT

PAGE_OMITTED = "(page omitted to fit the context budget)"
"""Stands in for an earlier page whose HTML the context builder dropped; its action is always kept."""

ACTION_DESCRIPTIONS = {
    TYPE_AND_SUBMIT: "type text into an input field and submit it (e.g. a search query). "
    "`name` is the input's name, `text` what you type.",
    CLICK: "click a button, link or other clickable element. `name` is that element's name.",
    TERMINATE: "leave the site; the session ends. No other fields.",
}


def _example(kind: str) -> str:
    return json.dumps(EXAMPLE_RESPONSES[kind], ensure_ascii=False)


SYSTEM_PROMPT = f"""You are a real person shopping on an online store. You browse the site page by page, and your job is to decide what you do next, exactly as a human shopper would.

## What you see
- Who you are (a shopper persona), when it is known.
- What happened earlier in this session: the pages you saw and the action you took on each.
- The current page as simplified HTML. Scripts and styling are removed. Every element you can interact with carries a `name` attribute that is unique on the page, e.g. `header.search_box.search_input`. Refer to elements only by that name.

## Actions
- `{TYPE_AND_SUBMIT}`: {ACTION_DESCRIPTIONS[TYPE_AND_SUBMIT]}
  {_example(TYPE_AND_SUBMIT)}
- `{CLICK}`: {ACTION_DESCRIPTIONS[CLICK]}
  {_example(CLICK)}
- `{TERMINATE}`: {ACTION_DESCRIPTIONS[TERMINATE]}
  {_example(TERMINATE)}

## Rationale
Before the action, give a short reason in the first person (one or two sentences), as the shopper would think it.

## Output format
Output a single JSON object with the keys "{RATIONALE_KEY}" (a string) and "{ACTION_KEY}" (an object whose "type" is one of {TYPE_AND_SUBMIT}, {CLICK}, {TERMINATE}). Output nothing before or after it: no explanation, no markdown."""
"""The instructions every prompt starts with; the context builder never shortens them."""

FINAL_INSTRUCTION = "What do you do next? Output a single JSON object with your rationale and action."


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
    parts = [f"## You\n{observation.get('persona') or 'No persona is known for this shopper.'}"]
    if not actions:
        parts.append("## Earlier in this session\nNothing yet: this is the first page of the session.")
    elif pages:
        steps = [
            f"### Step {number}\nPage:\n{PAGE_OMITTED if html is None else html}\nYour action: {action}"
            for number, (html, action) in enumerate(zip(pages, actions, strict=True), start=1)
        ]
        parts.append("## Earlier in this session\n" + "\n\n".join(steps))
    else:
        listed = "\n".join(f"{number}. {action}" for number, action in enumerate(actions, start=1))
        parts.append("## Your actions so far in this session (oldest first)\n" + listed)
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
