"""The canonical recorded shopping session: a list of (page, human action, rationale) steps.

Everything in the project flows from this model: loaders produce `Session`s, the replay env and the
context builder consume them. On disk a session is one JSON Lines row (docs/contract.md, the canonical session format):

    {"session_id": "s-001", "source": "synthetic", "persona": null,
     "steps": [{"observation": "<html>...</html>", "url": null,
                "action": {"type": "click", "name": "search_results.trail_shoe.view_product"},
                "rationale": "This one looks light.", "timestamp": null}]}

Keys we do not know are kept in `extra` and written back unchanged, so nothing is lost in a round trip.
Every malformed value raises `SessionFormatError`, which names the file, line, step and field.
"""

from __future__ import annotations

import copy
import errno
import gzip
import json
import os
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shop_env.atomic_io import atomic_write

CLICK = "click"
TYPE_AND_SUBMIT = "type_and_submit"
TERMINATE = "terminate"
ACTION_TYPES: tuple[str, ...] = (CLICK, TYPE_AND_SUBMIT, TERMINATE)
"""The paper's action space, in the order its tables list them."""

ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    CLICK: ("name",),
    TYPE_AND_SUBMIT: ("name", "text"),
    TERMINATE: (),
}
"""String fields each action type carries (docs/contract.md, the task and the response)."""


TypeMapping = Callable[[Any], Any]
"""What puts a source's action type into the action space before validation: the type, or None to drop."""


class SessionFormatError(ValueError):
    """A session, step or action that does not fit the canonical format, with where it was found."""

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike | None = None,
        line: int | None = None,
        step: int | None = None,
        field: str | None = None,
    ):
        self.file = None if file is None else str(file)
        self.line = line
        self.step = step
        self.field = field
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file if self.line is None else f"{self.file}:{self.line}")
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.step is not None:
            where.append(f"step {self.step}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return (", ".join(where) + ": " if where else "") + self.reason

    def located(self, *, file=None, line=None, step=None) -> SessionFormatError:
        """The same error with the outer location filled in where it was still unknown."""
        return SessionFormatError(
            self.reason,
            file=self.file if self.file is not None else file,
            line=self.line if self.line is not None else line,
            step=self.step if self.step is not None else step,
            field=self.field,
        )


def _require_str(value: Any, field_name: str, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise SessionFormatError(
            f"expected a string, got {type(value).__name__} {_preview(value)}", field=field_name
        )
    if not allow_empty and not value.strip():
        raise SessionFormatError("expected a non-empty string", field=field_name)
    return value


def _optional_str(value: Any, field_name: str) -> str | None:
    return None if value is None else _require_str(value, field_name)


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Action:
    """One human (or predicted) action: `click` {name}, `type_and_submit` {name, text}, `terminate` {}."""

    type: str
    name: str | None = None
    text: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        fields = ACTION_FIELDS.get(self.type) if isinstance(self.type, str) else None
        if fields is None:
            raise SessionFormatError(
                f"unknown action type {_preview(self.type)}; expected one of {', '.join(ACTION_TYPES)}",
                field="action.type",
            )
        # Written out per field: every predicted action is built here, once per env step.
        if fields:
            if type(self.name) is not str:
                _require_str(self.name, "action.name")
        elif self.name is not None:
            raise SessionFormatError(f"a {self.type} action takes no 'name'", field="action.name")
        if len(fields) == 2:
            if type(self.text) is not str:
                _require_str(self.text, "action.text")
        elif self.text is not None:
            raise SessionFormatError(f"a {self.type} action takes no 'text'", field="action.text")

    @classmethod
    def from_dict(cls, data: Any, *, map_type: TypeMapping | None = None) -> Action | None:
        """Build a gold action from its JSON object, its type first put through `map_type` (the loaders'
        `ActionTypes.resolve`: rename, or None to drop).

        Gold actions are stricter than predictions: a click or input needs a non-empty `name`.

        Returns None only when `map_type` drops the type (the caller asked for that).
        """
        if not isinstance(data, Mapping):
            raise SessionFormatError(
                f"expected an object, got {type(data).__name__} {_preview(data)}", field="action"
            )
        kind = data.get("type")
        if map_type is not None:
            kind = map_type(kind)
            if kind is None:
                return None
        if kind not in ACTION_TYPES:
            raise SessionFormatError(
                f"unknown action type {_preview(kind)}; expected one of {', '.join(ACTION_TYPES)}"
                " (pass an action mapping to the loader to rename or drop it)",
                field="action.type",
            )
        if ACTION_FIELDS[kind]:
            _require_str(data.get("name"), "action.name", allow_empty=False)
        extra = {k: v for k, v in data.items() if k not in ("type", "name", "text")}
        return cls(
            type=kind,
            name=data.get("name") if ACTION_FIELDS[kind] else _no_value(data, "name", kind),
            text=data.get("text") if "text" in ACTION_FIELDS[kind] else _no_value(data, "text", kind),
            extra=extra,
        )

    def to_dict(self) -> dict[str, Any]:
        """The action's JSON object (a new dict each call): its fields, then `extra`."""
        return {**self.response_object, **self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @property
    def response_object(self) -> dict[str, str]:
        """The action object a model's response holds for this action: `type` and the type's fields,
        without `extra` (a new dict each call)."""
        return {"type": self.type, **{key: getattr(self, key) for key in ACTION_FIELDS[self.type]}}

    def __str__(self) -> str:
        if self.type == CLICK:
            return f"click({self.name})"
        if self.type == TYPE_AND_SUBMIT:
            return f"type_and_submit({self.name}, {self.text!r})"
        return "terminate()"


def _no_value(data: Mapping, key: str, kind: str) -> None:
    """Terminate carries no name or text; a null or empty value is tolerated, anything else is not."""
    if data.get(key) not in (None, ""):
        raise SessionFormatError(f"a {kind} action takes no '{key}'", field=f"action.{key}")
    return None


STEP_KEYS = ("observation", "action", "rationale", "url", "timestamp")
SESSION_KEYS = ("session_id", "source", "persona", "steps")


@dataclass
class Step:
    """The page the human saw (simplified HTML) and the action they took on it."""

    observation: str
    action: Action
    rationale: str | None = None
    url: str | None = None
    timestamp: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, *, map_type: TypeMapping | None = None) -> Step | None:
        if not isinstance(data, Mapping):
            raise SessionFormatError(f"expected an object, got {type(data).__name__}")
        if "observation" not in data:
            raise SessionFormatError("missing (the page the human saw)", field="observation")
        if "action" not in data:
            raise SessionFormatError("missing (the human's action)", field="action")
        action = Action.from_dict(data["action"], map_type=map_type)
        if action is None:
            return None
        return cls(
            observation=_require_str(data["observation"], "observation"),
            action=action,
            rationale=_optional_str(data.get("rationale"), "rationale"),
            url=_optional_str(data.get("url"), "url"),
            timestamp=_optional_str(data.get("timestamp"), "timestamp"),
            extra={k: v for k, v in data.items() if k not in STEP_KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "observation": self.observation,
            "url": self.url,
            "action": self.action.to_dict(),
            "rationale": self.rationale,
            "timestamp": self.timestamp,
            **self.extra,
        }


@dataclass
class Session:
    """One shopper's recorded visit: ordered steps, the last usually a `terminate`."""

    session_id: str
    steps: list[Step]
    source: str | None = None
    persona: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def actions(self) -> list[Action]:
        return [step.action for step in self.steps]

    @classmethod
    def from_dict(cls, data: Any, *, map_type: TypeMapping | None = None) -> Session:
        """Validate one canonical session object; errors carry the step index and field."""
        if not isinstance(data, Mapping):
            raise SessionFormatError(
                f"expected a JSON object per line, got {type(data).__name__}"
            )
        session_id = session_id_of(data.get("session_id"))
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list):
            raise SessionFormatError(
                f"expected a list of steps, got {type(raw_steps).__name__}", field="steps"
            )
        if not raw_steps:
            raise SessionFormatError("a session needs at least one step", field="steps")
        steps = []
        for index, raw in enumerate(raw_steps):
            try:
                step = Step.from_dict(raw, map_type=map_type)
            except SessionFormatError as err:
                raise err.located(step=index) from None
            if step is not None:
                steps.append(step)
        if not steps:
            raise SessionFormatError(
                "every step was dropped by the action mapping", field="steps"
            )
        return cls(
            session_id=session_id,
            steps=steps,
            source=_optional_str(data.get("source"), "source"),
            persona=_optional_str(data.get("persona"), "persona"),
            extra={k: v for k, v in data.items() if k not in SESSION_KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "source": self.source,
            "persona": self.persona,
            "steps": [step.to_dict() for step in self.steps],
            **self.extra,
        }

    def copy(self) -> Session:
        """A copy with its own step list, steps and extras: changing one leaves the other as it was.

        Strings and the frozen Actions are shared, so a step costs ~3 us (copy.deepcopy: ~25 us).
        """
        return Session(
            session_id=self.session_id,
            steps=[
                Step(step.observation, step.action, step.rationale, step.url, step.timestamp, _own(step.extra))
                for step in self.steps
            ],
            source=self.source,
            persona=self.persona,
            extra=_own(self.extra),
        )


def _own(extra: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(extra) if extra else {}


def check_readable(path: str | os.PathLike) -> None:
    """Refuse, before opening, what would fail without a place or never return: a symlink loop or a
    broken symlink (both "no such file" otherwise) and anything but a regular file or a directory (a
    FIFO named sessions.jsonl blocks the reader until some writer comes). FileNotFoundError when
    nothing is there."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise SessionFormatError(
                f"a broken symlink (to {os.readlink(path)}, which does not exist): point it at the sessions", file=path
            ) from None
        raise FileNotFoundError(f"no such file or directory: {path}") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise SessionFormatError(
                "a symlink loop (following its links leads back to it): point it at the sessions file itself",
                file=path,
            ) from None
        raise
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "FIFO (named pipe)" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        raise SessionFormatError(
            f"a {kind}, not a regular file: reading it could wait forever for a writer; copy the sessions "
            "into a regular file and pass that",
            file=path,
        )


def parse_json(text: str) -> Any:
    """`json.loads`, with every way it fails on data as a `SessionFormatError` that says what to do
    (the caller adds where): bad syntax, nesting past the interpreter's recursion limit (~1000
    levels), an integer of more digits than Python converts (4300)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SessionFormatError(f"not valid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise SessionFormatError(
            "JSON nested too deeply to read (over ~1000 levels of arrays or objects); flatten that value "
            "or store it as a string"
        ) from None
    except ValueError as err:  # the only other failure of json.loads: int() of a too-long digit string
        raise SessionFormatError(f"JSON that Python cannot read ({err}); store such a number as a string") from None


def iter_text_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a UTF-8 file, gzip-compressed when the name ends in .gz.

    Reads bytes and decodes line by line, so a bad byte or a corrupt stream is an error naming its line.
    """
    path = Path(path)
    check_readable(path)
    opener = gzip.open if path.suffix == ".gz" else open
    line_no = 0
    with opener(path, "rb") as handle:
        try:
            for line_no, raw in enumerate(handle, start=1):
                try:
                    yield line_no, raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise SessionFormatError(
                        f"not valid UTF-8 (byte {err.start + 1} of the line: {err.reason})", file=path, line=line_no
                    ) from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise SessionFormatError(
                f"cannot read this line: corrupt or truncated gzip stream ({type(err).__name__}: {err})",
                file=path,
                line=line_no + 1,
            ) from None


def iter_json_lines(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line; a line that is not JSON names file:line."""
    path = Path(path)
    for line_no, line in iter_text_lines(path):
        if not line.strip():
            continue
        try:
            data = parse_json(line)
        except SessionFormatError as err:
            raise err.located(file=path, line=line_no) from None
        yield line_no, data


def iter_jsonl(path: str | os.PathLike, *, map_type: TypeMapping | None = None) -> Iterator[Session]:
    """Stream sessions from a canonical JSON Lines file (plain or .gz); blank lines are skipped."""
    path = Path(path)
    distinct = DistinctIds()
    for line_no, data in iter_json_lines(path):
        try:
            session = Session.from_dict(data, map_type=map_type)
        except SessionFormatError as err:
            raise err.located(file=path, line=line_no) from None
        distinct.check(session.session_id, f"line {line_no}", file=path, line=line_no)
        yield session


def read_jsonl(path: str | os.PathLike, *, map_type: TypeMapping | None = None) -> list[Session]:
    return list(iter_jsonl(path, map_type=map_type))


def session_id_of(value: Any) -> str:
    """A session id as every format gives it: a non-empty string, or an integer (kept as its digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _require_str(value, "session_id", allow_empty=False)


class DistinctIds:
    """Refuses a session id seen before, naming where it was first."""

    def __init__(self):
        self._first: dict[str, str] = {}

    def check(self, session_id: str, where: str, **location: Any) -> None:
        if session_id in self._first:
            raise SessionFormatError(
                f"duplicate session_id {session_id!r} (first on {self._first[session_id]})", field="session_id", **location
            )
        self._first[session_id] = where


def write_jsonl(sessions: Iterable[Session], path: str | os.PathLike) -> Path:
    """Write sessions atomically (temp file + rename), gzip when the name ends in .gz."""
    with atomic_write(path) as handle:
        for session in sessions:
            handle.write(json.dumps(session.to_dict(), ensure_ascii=False) + "\n")
    return Path(path)
