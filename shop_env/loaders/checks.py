"""Checks every row-per-step format makes of a session's rows (OPeRA and Shop-CART), written once."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from shop_env.session import SessionFormatError


def same_on_every_row(session_id: str, key: str, values: Iterable[Any], *, file: str) -> None:
    """A session-level value (persona, source, extras) must be the same on each of the session's rows."""
    seen = {json.dumps(value, sort_keys=True, default=repr) for value in values}
    if len(seen) > 1:
        raise SessionFormatError(
            f"session {session_id!r}: '{key}' differs between its rows ({', '.join(sorted(seen))})", file=file, field=key
        )


def optional_of_type(session_id: str, key: str, value: Any, expected: type, *, file: str) -> None:
    """A session-level value is null or of the expected type."""
    if value is not None and not isinstance(value, expected):
        what = "an object" if expected is dict else "a string"
        raise SessionFormatError(f"session {session_id!r}: expected {what} or null, got {value!r}", file=file, field=key)
