"""Shop-CART-style per-step rows (one JSON object per line), the shape of the paper's examples: read into
sessions, and write sessions as such rows (`shopcart_rows`, whole-session context).

    {"session_id": "s-001",              # required, groups the rows
     "step": 2,                          # required, 0-based index of this step in its session
     "context": [                        # optional, the steps before this one, oldest first; an entry
        {"observation": "<html>...",     #   may omit the page (latest-step context) but when present
         "action": {"type": "click", "name": "..."}}, ...],   # it must match the other rows
     "observation": "<html>...",         # required, the page the human saw at this step
     "action": {"type": "click", "name": "search_results.x.view_product"},  # object or JSON string
     "rationale": "I like this one.",    # optional
     "url": null, "timestamp": null,     # optional
     "persona": null, "source": null,    # optional, the same on every row of a session
     "session_extra": {"cohort": 2}}     # optional, the session's extra keys, the same on every row

Every step 0..n-1 of a session must be present exactly once, in any order; sessions come out in the
order their first row appears. Other keys go to `step.extra`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from shop_env.loaders.action_types import ActionTypes
from shop_env.loaders.checks import optional_of_type, same_on_every_row
from shop_env.session import Session, SessionFormatError, Step, parse_json, session_id_of

SHOPCART_KEYS: tuple[str, ...] = (
    "session_id", "step", "context", "observation", "action", "rationale", "url", "timestamp",
    "persona", "source", "session_extra",
)
"""Keys of a Shop-CART row with a meaning; any other key is kept in `step.extra`."""


def shopcart_rows(session: Session) -> list[dict[str, Any]]:
    """A session as Shop-CART-style per-step rows (the schema in the module docstring), whole-session
    context: every row carries all earlier pages and actions. `format="shopcart"` reads them back."""
    rows = []
    for index, step in enumerate(session.steps):
        for key in step.extra:
            if key in SHOPCART_KEYS:
                raise SessionFormatError(
                    f"session {session.session_id!r}: step extra key {key!r} collides with the Shop-CART key of "
                    "that name, so the row could not be read back; rename the extra key or write canonical "
                    "JSON Lines",
                    step=index,
                    field=key,
                )
        rows.append(
            {
                "session_id": session.session_id,
                "step": index,
                "context": [
                    {"observation": past.observation, "action": past.action.to_dict()}
                    for past in session.steps[:index]
                ],
                "observation": step.observation,
                "action": step.action.to_dict(),
                "rationale": step.rationale,
                "url": step.url,
                "timestamp": step.timestamp,
                "persona": session.persona,
                "source": session.source,
                "session_extra": session.extra,
                **step.extra,
            }
        )
    return rows


def sessions_from_shopcart_rows(rows: Iterable[tuple[str, dict]], types: ActionTypes) -> list[Session]:
    grouped: dict[str, dict[int, tuple[str, dict]]] = defaultdict(dict)
    for location, row in rows:
        try:
            session_id = session_id_of(row.get("session_id"))
        except SessionFormatError as err:
            raise err.located(file=location) from None
        index = row.get("step")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise SessionFormatError(
                f"expected the step's 0-based index as an integer, got {index!r}", file=location, field="step"
            )
        if index in grouped[session_id]:
            raise SessionFormatError(
                f"session {session_id!r} has step {index} twice (first at {grouped[session_id][index][0]})",
                file=location,
                step=index,
                field="step",
            )
        grouped[session_id][index] = (location, row)
    return [_shopcart_session(session_id, by_index, types) for session_id, by_index in grouped.items()]


def _shopcart_session(session_id: str, by_index: dict[int, tuple[str, dict]], types: ActionTypes) -> Session:
    missing = sorted(set(range(max(by_index) + 1)) - set(by_index))
    if missing:
        raise SessionFormatError(
            f"session {session_id!r} lacks the row(s) for step(s) {', '.join(map(str, missing))}; "
            "every step 0..n-1 needs its own row",
            file=by_index[max(by_index)][0],
            field="step",
        )
    steps: list[Step] = []
    for index in range(len(by_index)):
        location, row = by_index[index]
        step_data = {key: row[key] for key in ("observation", "rationale", "url", "timestamp") if key in row}
        step_data["action"] = _action_object(row.get("action"), location, index)
        step_data.update({key: value for key, value in row.items() if key not in SHOPCART_KEYS})
        try:
            step = Step.from_dict(step_data, map_type=types.resolve)
        except SessionFormatError as err:
            raise SessionFormatError(
                f"session {session_id!r}: {err.reason}", file=location, step=index, field=err.field
            ) from None
        if step is not None:
            steps.append(step)
    for index in range(len(by_index)):
        location, row = by_index[index]
        _check_context(session_id, row.get("context", []), by_index, index, location)
    if not steps:
        raise SessionFormatError(
            f"session {session_id!r}: every step was dropped by the action mapping", file=by_index[0][0]
        )
    first_location, first = by_index[0]
    for key in ("persona", "source", "session_extra"):
        same_on_every_row(session_id, key, (row.get(key) for _, row in by_index.values()), file=first_location)
        optional_of_type(session_id, key, first.get(key), dict if key == "session_extra" else str, file=first_location)
    return Session(
        session_id=session_id,
        steps=steps,
        source=first.get("source"),
        persona=first.get("persona"),
        extra=dict(first.get("session_extra") or {}),
    )


def _action_object(value: Any, location: str, index: int) -> Any:
    """The row's action: an object, or the JSON text of one (the paper's examples hold JSON text)."""
    if isinstance(value, str):
        try:
            return parse_json(value)
        except SessionFormatError as err:
            raise SessionFormatError(
                f"action is a string but {err.reason}",
                file=location,
                step=index,
                field="action",
            ) from None
    return value


def _check_context(
    session_id: str, context: Any, by_index: dict[int, tuple[str, dict]], index: int, location: str
) -> None:
    """A row's context must be the steps before it: same count, and the same pages and actions."""
    if not isinstance(context, list):
        raise SessionFormatError(
            f"expected a list of earlier steps, got {type(context).__name__}",
            file=location,
            step=index,
            field="context",
        )
    if context and len(context) != index:
        raise SessionFormatError(
            f"session {session_id!r}: context holds {len(context)} earlier step(s) but this is step {index}",
            file=location,
            step=index,
            field="context",
        )
    for past_index, entry in enumerate(context):
        if not isinstance(entry, dict):
            raise SessionFormatError(
                f"expected an object with 'observation' and 'action', got {type(entry).__name__}",
                file=location,
                step=index,
                field=f"context[{past_index}]",
            )
        past_location, past_row = by_index[past_index]
        if "observation" in entry and entry["observation"] != past_row.get("observation"):
            raise SessionFormatError(
                f"session {session_id!r}: this page differs from the observation of step {past_index} "
                f"({past_location})",
                file=location,
                step=index,
                field=f"context[{past_index}].observation",
            )
        if "action" in entry:
            action = _action_object(entry["action"], location, index)
            if action != _action_object(past_row.get("action"), past_location, past_index):
                raise SessionFormatError(
                    f"session {session_id!r}: this action {action!r} differs from the action of step "
                    f"{past_index} ({past_location})",
                    file=location,
                    step=index,
                    field=f"context[{past_index}].action",
                )
