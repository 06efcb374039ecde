"""The one step that puts a source's action types into the paper's action space, before validation.

A file may spell types its own way (OPeRA's `input`) or hold types the paper has no place for
(`scroll`, `navigation`, `tab_activate` in OPeRA's `full_action`). The caller decides: `action_map`
renames a type (`{"hover": "click"}`) or drops it (`{"scroll": None}`), `drop_unknown_actions=True`
drops every type that is neither known nor mapped, and otherwise such a type is an error naming the
file, row and the allowed types. Every reader resolves each action's type through `ActionTypes.resolve`
and only then validates the action; what was dropped is logged with counts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_env.session import ACTION_TYPES, SessionFormatError

logger = logging.getLogger(__name__)

CANONICAL: dict[str, str] = {kind: kind for kind in ACTION_TYPES}
"""The paper's types as they are spelled in canonical sessions and Shop-CART rows."""


@dataclass
class ActionTypes:
    """The caller's choice for action types outside the paper's action space: map, drop or refuse."""

    action_map: Mapping[str, str | None] | None
    drop_unknown: bool

    def __post_init__(self):
        self.dropped: Counter[str] = Counter()
        for source, target in (self.action_map or {}).items():
            if target is not None and target not in ACTION_TYPES:
                raise ValueError(
                    f"action_map maps {source!r} to {target!r}; map to one of {', '.join(ACTION_TYPES)} "
                    "or to None to drop it"
                )

    def check_known(self, rows: Iterable[tuple[str, Any]], defaults: Mapping[str, str]) -> None:
        """Refuse, naming every one with counts, the source types that are neither known nor mapped."""
        if self.drop_unknown:
            return
        unknown: Counter[str] = Counter()
        first_seen: dict[str, str] = {}
        for location, source_type in rows:
            if source_type not in defaults and not (self.action_map and source_type in self.action_map):
                unknown[source_type] += 1
                first_seen.setdefault(source_type, location)
        if unknown:
            kinds = sorted(unknown, key=str)
            found = ", ".join(f"{kind!r} x{unknown[kind]} (first at {first_seen[kind]})" for kind in kinds)
            drop_all = "{" + ", ".join(f"{kind!r}: None" for kind in kinds) + "}"
            raise SessionFormatError(
                f"action types outside the paper's action space: {found}; expected one of "
                f"{', '.join(defaults)}. Pass action_map={drop_all} to drop them (or map each to one of "
                f"{', '.join(ACTION_TYPES)}), or pass drop_unknown_actions=True",
                file=first_seen[kinds[0]],
                field="action_type",
            )

    def resolve(self, source_type: Any, defaults: Mapping[str, str] = CANONICAL) -> Any:
        """The paper's type for a source type, None when it is dropped (counted), or the type unchanged
        when it is neither known nor mapped, for validation to refuse with the allowed types."""
        try:
            mapped = bool(self.action_map) and source_type in self.action_map
            known = source_type in defaults
        except TypeError:  # an unhashable "type" (a list in a JSON file): unknown
            mapped = known = False
        if mapped:
            target = self.action_map[source_type]
        elif known:
            target = defaults[source_type]
        elif self.drop_unknown:
            target = None
        else:
            return source_type
        if target is None:
            self.dropped[str(source_type)] += 1
        return target

    def log_dropped(self, path: Path) -> None:
        if self.dropped:
            counts = ", ".join(f"{kind} x{count}" for kind, count in sorted(self.dropped.items()))
            logger.info("load_sessions: %s: dropped actions as asked: %s", path, counts)
