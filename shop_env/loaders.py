"""Load recorded shopping sessions from every format the project meets, into canonical `Session`s.

`load_sessions(path, format="auto")` reads:

- `jsonl`: canonical sessions, one per line (docs/contract.md, the canonical session format), plain or `.gz`; detected from a
  `.jsonl` / `.jsonl.gz` file whose first row has `steps`;
- `opera`: OPeRA `filtered_action` / `full_action` rows (docs/contract.md, data sources), one `.parquet` file, a
  pattern (`OPeRA_filtered/action/train-*.parquet`) or a directory of shards of one split; detected
  from `.parquet` files;
- `hf`: a Hugging Face `datasets` dataset on local disk, a `save_to_disk` directory or a cached
  `.arrow` file, whose columns may be OPeRA's, canonical sessions or Shop-CART rows; detected from
  `state.json` / `dataset_info.json` in the directory, or the `.arrow` suffix;
- `shopcart`: Shop-CART-style per-step examples (schema below), JSON Lines, plain or `.gz`; detected
  from a `.jsonl` file whose first row has `step` and `observation`.

Nothing here downloads: every path is a local file or directory. Every bad row raises
`SessionFormatError` naming the file and line (or parquet file and row, or dataset row), the session,
the step and the field; a corrupt row is an error, never skipped. Unknown action types are an error
unless the caller maps them (`action_map={"scroll": None}` drops scrolls, `{"hover": "click"}` renames)
or passes `drop_unknown_actions=True`; what is dropped is logged with counts.

OPeRA rows -> sessions: rows are grouped by `session_id` and ordered by `timestamp` (then
`action_id`); `click` -> click(name=semantic_id), `input` -> type_and_submit(name=semantic_id,
text=input_text), `terminate` -> terminate. `simplified_html` is the observation (stored as given),
`url`, `timestamp` and `rationale` fill the step's fields, and every other non-null column (action_id,
click_type, mouse_position, element_meta, page_meta, products, image, the `full_*` extras ...) is kept
in `step.extra` under its column name, so nothing is lost. `write_opera_parquet` is the inverse.

Shop-CART rows (one JSON object per line) -> sessions:

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

import json
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from shop_env.atomic_io import atomic_write, writable
from shop_env.session import (
    ACTION_TYPES,
    CLICK,
    TERMINATE,
    TYPE_AND_SUBMIT,
    Action,
    Session,
    SessionFormatError,
    Step,
    check_readable,
    iter_json_lines,
    parse_json,
    read_jsonl,
    write_jsonl,
)

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("jsonl", "opera", "hf", "shopcart")
"""Formats `load_sessions` reads; pass one as `format=` or let "auto" detect it."""

OPERA_ACTION_TYPES: dict[str, str] = {"click": CLICK, "input": TYPE_AND_SUBMIT, "terminate": TERMINATE}
"""OPeRA `action_type` -> the paper's action type. `full_action` also has scroll, navigation and
tab_activate, which the paper's action space lacks: map or drop them explicitly."""

OPERA_COLUMNS: tuple[str, ...] = (
    "session_id", "action_id", "timestamp", "action_type", "click_type", "semantic_id",
    "mouse_position", "element_meta", "url", "window_size", "page_meta", "simplified_html",
    "rationale", "products", "input_text", "image",
)
"""The `filtered_action` columns, all strings, in the dataset's order."""

OPERA_REQUIRED_COLUMNS: tuple[str, ...] = ("session_id", "timestamp", "action_type", "simplified_html")
"""Columns a file must have to be read as OPeRA actions."""

STEP_INDEX_COLUMN = "step_index"
SESSION_INDEX_COLUMN = "session_index"
SOURCE_COLUMN = "source"
PERSONA_COLUMN = "persona"
STEP_EXTRA_JSON_COLUMN = "step_extra_json"
SESSION_EXTRA_JSON_COLUMN = "session_extra_json"
"""Columns `write_opera_parquet` adds beside OPeRA's so that reading the file back gives the same
sessions: the order of steps and sessions (real OPeRA files are ordered by timestamp instead), the
session's source and persona, and extras that are not strings (as JSON). All are strings."""

SHOPCART_KEYS: tuple[str, ...] = (
    "session_id", "step", "context", "observation", "action", "rationale", "url", "timestamp",
    "persona", "source", "session_extra",
)
"""Keys of a Shop-CART row with a meaning; any other key is kept in `step.extra`."""

BUNDLED_SPLITS: tuple[str, ...] = ("train", "test")


class LoadedSessions(list):
    """The sessions `load_sessions` read (a plain list of `Session`), with where they came from."""

    def __init__(self, sessions: Iterable[Session], *, format: str, path: Path):
        super().__init__(sessions)
        self.format = format
        """The format read: one of `FORMATS` (what "auto" detected)."""
        self.path = path


def load_sessions(
    path: str | os.PathLike,
    format: str = "auto",
    *,
    action_map: Mapping[str, str | None] | None = None,
    drop_unknown_actions: bool = False,
) -> LoadedSessions:
    """Read sessions from a local file or directory in any of `FORMATS`.

    `action_map` renames source action types (keys: the types as the file spells them, e.g. OPeRA's
    `input`, `scroll`) to one of click / type_and_submit / terminate, or drops them (value None).
    `drop_unknown_actions=True` drops every action of a type that is neither known nor mapped.
    Returns a list of sessions whose `.format` says what was read.
    """
    if not os.fspath(path).strip():
        raise ValueError(
            "empty sessions path (it would read the current directory): pass a file, a directory, or "
            "bundled:train / bundled:test"
        )
    path = Path(path).expanduser()
    if not _is_parquet_glob(path):
        check_readable(path)
    if format == "auto":
        format = detect_format(path)
        logger.info("load_sessions: %s read as %r", path, format)
    elif format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected 'auto' or one of {', '.join(FORMATS)}")
    policy = _ActionPolicy(action_map, drop_unknown_actions)
    if format == "jsonl":
        sessions = _read_canonical_jsonl(path, policy)
    elif format == "opera":
        sessions = _sessions_from_opera_rows(_parquet_rows(path), policy)
    elif format == "shopcart":
        sessions = _sessions_from_shopcart_rows(_jsonl_rows(path), policy)
    else:
        sessions = _read_hf_dataset(path, policy)
    policy.log_dropped(path)
    return LoadedSessions(sessions, format=format, path=path)


def detect_format(path: str | os.PathLike) -> str:
    """Which of `FORMATS` a path holds, from its name, its files and its first row or schema."""
    path = Path(path)
    if path.is_dir():
        if (path / "dataset_dict.json").exists():
            splits = sorted(child.name for child in path.iterdir() if (child / "state.json").exists())
            raise SessionFormatError(
                f"a Hugging Face DatasetDict with splits {', '.join(splits) or '(none)'}: pass one split's "
                f"directory, e.g. {path / (splits[0] if splits else 'train')}",
                file=path,
            )
        if (path / "state.json").exists() or (path / "dataset_info.json").exists():
            return "hf"
        shards = _parquet_files(path, required=False)
        others = sorted(
            str(file.relative_to(path)) for file in path.rglob("*") if file.name.lower().endswith(_SESSION_FILE_SUFFIXES)
        )
        if shards and others:
            raise SessionFormatError(
                f"this directory holds .parquet shards ({len(shards)}) and other session files "
                f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}): pass the file you mean, or "
                "format='opera' (--from opera) to read only the .parquet shards",
                file=path,
            )
        if shards:
            return "opera"
        raise SessionFormatError(
            f"cannot tell the format of this directory: it holds no .parquet shards and no Hugging Face "
            f"dataset (state.json){'; pass one of its files: ' + ', '.join(others[:5]) if others else ''}; "
            f"formats: {_FORMAT_HELP}",
            file=path,
        )
    name = path.name.lower()
    if name.endswith(".parquet"):  # a file, or a pattern like train-*.parquet
        return "opera"
    if name.endswith(".arrow"):
        return "hf"
    if name.endswith(_JSONL_SUFFIXES):
        line_no, row = _first_jsonl_row(path)
        if row is None:
            return "jsonl"  # an empty file: no sessions in either JSONL format
        if "steps" in row:
            return "jsonl"
        if "step" in row and "observation" in row:
            return "shopcart"
        raise SessionFormatError(
            f"cannot tell the format from the first row's keys {sorted(row)}: canonical sessions have "
            "'steps', Shop-CART rows have 'step' and 'observation'",
            file=path,
            line=line_no,
        )
    raise SessionFormatError(f"cannot tell the format from the file name; formats: {_FORMAT_HELP}", file=path)


_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_SESSION_FILE_SUFFIXES = (*_JSONL_SUFFIXES, ".arrow")
"""Files that hold sessions in a format other than OPeRA parquet."""
_FORMAT_HELP = (
    "jsonl (canonical sessions, .jsonl/.jsonl.gz), opera (OPeRA action .parquet file or directory of "
    "shards), hf (datasets save_to_disk directory or .arrow file), shopcart (per-step rows, .jsonl/.jsonl.gz)"
)


def bundled_sessions(split: str) -> list[Session]:
    """The procedural-shop sessions shipped in the package (`assets/sessions_{split}.jsonl.gz` in the repo,
    `shop_env.assets` once installed), for split "train" or "test".

    Parsed once per process; every call returns fresh Session and Step objects (with their own step
    lists and extras), so callers may change what they get. Actions are frozen and shared.
    """
    if split not in BUNDLED_SPLITS:
        raise ValueError(f"unknown bundled split {split!r}; expected one of {', '.join(BUNDLED_SPLITS)}")
    path = Path(str(files("shop_env.assets") / f"sessions_{split}.jsonl.gz"))
    if not path.exists():
        raise FileNotFoundError(
            f"bundled sessions not found at {path}: the installation lacks its data files; reinstall shop-r1, or "
            f"regenerate them with `shop-r1 make-sessions --out {path}` (see assets/README.md)"
        )
    stat = path.stat()
    return [session.copy() for session in _parsed_bundle(path, stat.st_mtime_ns, stat.st_size)]


@lru_cache(maxsize=len(BUNDLED_SPLITS))
def _parsed_bundle(path: Path, mtime_ns: int, size: int) -> tuple[Session, ...]:
    # mtime and size are part of the key: regenerated assets are read again, not served stale.
    return tuple(read_jsonl(path))


def resolve_sessions(spec: str | os.PathLike | Sequence[Session]) -> list[Session]:
    """Sessions from what a user passes to `--sessions` or the env: "bundled:train" / "bundled:test",
    a path in any format `load_sessions` reads, or a list of `Session` objects (returned as a new list).
    """
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if isinstance(spec, str) and text.startswith("bundled:"):
            sessions = bundled_sessions(text.removeprefix("bundled:"))
        else:
            sessions = list(load_sessions(text))
    elif isinstance(spec, Sequence):
        sessions = list(spec)
        for index, item in enumerate(sessions):
            if not isinstance(item, Session):
                raise TypeError(f"sessions[{index}] is a {type(item).__name__}, expected a Session")
    else:
        raise TypeError(
            f"expected 'bundled:train', 'bundled:test', a path or a list of Session, got {type(spec).__name__}"
        )
    if not sessions:
        raise ValueError(f"no sessions in {spec if isinstance(spec, (str, os.PathLike)) else 'the given list'}")
    return sessions


OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "opera", "shopcart")
"""Formats `convert_sessions` writes."""


def convert_sessions(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    source_format: str = "auto",
    to: str | None = None,
    action_map: Mapping[str, str | None] | None = None,
    drop_unknown_actions: bool = False,
    shards: int = 1,
) -> dict[str, Any]:
    """Read sessions in any format and write them as canonical JSONL, OPeRA parquet or Shop-CART rows.

    `to` defaults from the destination's name: `.parquet` (or `shards > 1`) -> opera, else jsonl.
    Returns what was done: formats, session and step counts, the destination.
    """
    if to is None:
        to = "opera" if str(destination).endswith(".parquet") or shards > 1 else "jsonl"
    if to not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {to!r}; expected one of {', '.join(OUTPUT_FORMATS)}")
    if shards != 1 and to != "opera":
        raise ValueError(f"shards={shards} applies to opera parquet output only, not {to!r}")
    sessions = load_sessions(
        source, source_format, action_map=action_map, drop_unknown_actions=drop_unknown_actions
    )
    if to == "opera":
        written = write_opera_parquet(sessions, destination, shards=shards)
    elif to == "jsonl":
        written = write_jsonl(sessions, destination)
    else:
        written = Path(destination)
        with atomic_write(written) as handle:
            for session in sessions:
                for row in shopcart_rows(session):
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {
        "source": str(source),
        "source_format": sessions.format,
        "destination": str(written),
        "format": to,
        "sessions": len(sessions),
        "steps": sum(len(session) for session in sessions),
    }


# --- action types -------------------------------------------------------------------------------


@dataclass
class _ActionPolicy:
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

    def for_session_model(self) -> Mapping[str, str | None] | None:
        """The mapping to hand to `Session.from_dict`, which renames or drops types listed in it."""
        if not self.drop_unknown:
            return self.action_map
        return _DropUnknownTypes(self.action_map or {}, self.dropped)

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

    def resolve(self, source_type: Any, defaults: Mapping[str, str]) -> str | None:
        """The canonical type for a source type (after `check_known`); None when it is dropped."""
        if self.action_map and source_type in self.action_map:
            target = self.action_map[source_type]
        else:
            target = defaults.get(source_type)
        if target is None:
            self.dropped[str(source_type)] += 1
        return target

    def log_dropped(self, path: Path) -> None:
        if self.dropped:
            counts = ", ".join(f"{kind} x{count}" for kind, count in sorted(self.dropped.items()))
            logger.info("load_sessions: %s: dropped actions as asked: %s", path, counts)


class _DropUnknownTypes(Mapping):
    """An action map that also sends every type outside the action space to None (drop), counting."""

    def __init__(self, explicit: Mapping[str, str | None], dropped: Counter):
        self._explicit = explicit
        self._dropped = dropped

    def __contains__(self, kind: object) -> bool:
        return kind in self._explicit or kind not in ACTION_TYPES

    def __getitem__(self, kind: str) -> str | None:
        if kind in self._explicit:
            target = self._explicit[kind]
        elif kind not in ACTION_TYPES:
            target = None
        else:
            raise KeyError(kind)
        if target is None:
            self._dropped[str(kind)] += 1
        return target

    def __iter__(self) -> Iterator[str]:
        return iter(self._explicit)

    def __len__(self) -> int:
        return len(self._explicit)

    def __bool__(self) -> bool:
        return True


# --- canonical JSONL ----------------------------------------------------------------------------


def _read_canonical_jsonl(path: Path, policy: _ActionPolicy) -> list[Session]:
    if path.is_dir():
        raise SessionFormatError("format 'jsonl' reads one file, got a directory", file=path)
    return read_jsonl(path, action_map=policy.for_session_model())


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict]]:
    """(location, row) for every non-blank line; a line that is not a JSON object is an error."""
    for line_no, row in _jsonl_objects(path):
        yield f"{path}:{line_no}", row


def _jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    if path.is_dir():
        raise SessionFormatError("format 'shopcart' reads one JSON Lines file, got a directory", file=path)
    for line_no, row in iter_json_lines(path):
        if not isinstance(row, dict):
            raise SessionFormatError(
                f"expected a JSON object per line, got {type(row).__name__}", file=path, line=line_no
            )
        yield line_no, row


def _first_jsonl_row(path: Path) -> tuple[int, dict | None]:
    return next(_jsonl_objects(path), (0, None))


# --- OPeRA parquet ------------------------------------------------------------------------------


_SPLIT_SHARD = re.compile(r"^(train|test|validation|valid|dev)[-_.]")


def _is_parquet_glob(path: Path) -> bool:
    return path.name.endswith(".parquet") and any(char in path.name for char in "*?[")


def _parquet_files(path: Path, *, required: bool = True) -> list[Path]:
    """The shards to read: the file itself, the files a pattern (`train-*.parquet`) matches, or every
    .parquet file under a directory, refusing a directory that mixes splits (OPeRA keeps train-* and
    test-* shards side by side)."""
    if path.is_file():
        return [path]
    if _is_parquet_glob(path):
        files = sorted(file for file in path.parent.glob(path.name) if file.is_file())
        if not files:
            raise SessionFormatError("no .parquet file matches this pattern", file=path)
        return files
    files = sorted(file for file in path.rglob("*.parquet") if file.is_file())
    if not files and required:
        raise SessionFormatError("no .parquet files in this directory", file=path)
    splits = sorted({match.group(1) for file in files if (match := _SPLIT_SHARD.match(file.name))})
    if len(splits) > 1:
        raise SessionFormatError(
            f"this directory holds shards of several splits ({', '.join(splits)}); pass one split's "
            f"shards as a pattern, e.g. {path / (splits[0] + '-*.parquet')}",
            file=path,
        )
    return files


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict]]:
    """(location, row) for every row of every shard, checking each shard's schema first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for file in _parquet_files(path):
        try:
            parquet = pq.ParquetFile(file)
        except (pa.ArrowException, OSError) as err:
            raise SessionFormatError(f"not a readable parquet file ({err})", file=file) from None
        schema = parquet.schema_arrow
        _check_opera_columns(schema.names, file)
        for field in schema:
            kind = field.type
            if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
                raise SessionFormatError(
                    f"column '{field.name}' has type {field.type}; OPeRA action files hold string "
                    "columns only (cast it to string)",
                    file=file,
                )
        row_no = 0
        for batch in parquet.iter_batches():
            for row in batch.to_pylist():
                yield f"{file} row {row_no}", row
                row_no += 1


def _check_opera_columns(columns: Sequence[str], where: Path | str) -> None:
    missing = [column for column in OPERA_REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise SessionFormatError(
            f"missing OPeRA column(s) {', '.join(missing)} (found {', '.join(columns) or 'none'}); "
            f"an OPeRA action table needs {', '.join(OPERA_REQUIRED_COLUMNS)}",
            file=where,
        )


_OPERA_STEP_COLUMNS = frozenset(
    ("session_id", "timestamp", "action_type", "url", "simplified_html", "rationale",
     STEP_INDEX_COLUMN, SESSION_INDEX_COLUMN, SOURCE_COLUMN, PERSONA_COLUMN,
     STEP_EXTRA_JSON_COLUMN, SESSION_EXTRA_JSON_COLUMN)
)
"""Columns that become step or session fields; semantic_id and input_text join them when the action
uses them. Every other non-null column is kept in `step.extra`."""


@dataclass
class _OperaRow:
    location: str
    row: dict
    order: tuple


def _sessions_from_opera_rows(rows: Iterable[tuple[str, dict]], policy: _ActionPolicy) -> list[Session]:
    grouped: dict[str, list[_OperaRow]] = defaultdict(list)
    for location, row in rows:
        session_id = row.get("session_id")
        if not isinstance(session_id, str) or not session_id.strip():
            raise SessionFormatError(
                f"expected a non-empty session_id string, got {session_id!r}", file=location, field="session_id"
            )
        grouped[session_id].append(_OperaRow(location, row, _opera_order(location, row)))
    policy.check_known(
        ((item.location, item.row.get("action_type")) for rows in grouped.values() for item in rows),
        OPERA_ACTION_TYPES,
    )
    sessions = []
    for session_id, session_rows in grouped.items():
        session_rows.sort(key=lambda item: item.order)
        for before, after in zip(session_rows, session_rows[1:], strict=False):
            if before.order[:-1] == after.order[:-1]:
                raise SessionFormatError(
                    f"session {session_id!r}: rows {before.location} and {after.location} have the same "
                    "position (step_index, or timestamp and action_id): cannot order the session",
                    file=after.location,
                )
        sessions.append(_opera_session(session_id, session_rows, policy))
    sessions.sort(key=lambda ordered: ordered[0])
    return [session for _, session in sessions]


def _opera_order(location: str, row: dict) -> tuple:
    """Sort key of a row in its session: `step_index` when the file has it, else (timestamp, action_id).

    The row's location comes last so equal keys are caught (and the sort never compares dicts).
    """
    if row.get(STEP_INDEX_COLUMN) is not None:
        return (0, _int_column(row, STEP_INDEX_COLUMN, location), location)
    stamp = row.get("timestamp")
    if not isinstance(stamp, str):
        raise SessionFormatError(
            f"expected an ISO timestamp string to order the session by, got {stamp!r}",
            file=location,
            field="timestamp",
        )
    return (1, _parse_timestamp(stamp, location), str(row.get("action_id") or ""), location)


def _parse_timestamp(stamp: str, location: str) -> datetime:
    try:
        moment = datetime.fromisoformat(stamp.strip())
    except ValueError:
        raise SessionFormatError(
            f"expected an ISO 8601 timestamp like 2025-04-14T21:52:57.792Z, got {stamp!r}",
            file=location,
            field="timestamp",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _int_column(row: dict, column: str, location: str) -> int:
    value = row.get(column)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SessionFormatError(
            f"expected an integer (as a string), got {value!r}", file=location, field=column
        ) from None


def _opera_session(session_id: str, rows: list[_OperaRow], policy: _ActionPolicy) -> tuple[tuple, Session]:
    """The session and its sort key among sessions: `session_index` when the file has it, else the
    first timestamp. A session whose every action was dropped is an error, as in the other formats."""
    steps = []
    for item in rows:
        try:
            step = _opera_step(item.row, policy)
        except SessionFormatError as err:
            raise SessionFormatError(
                f"session {session_id!r}: {err.reason}", file=item.location, step=len(steps), field=err.field
            ) from None
        if step is not None:
            steps.append(step)
    first = rows[0]
    if not steps:
        kinds = Counter(str(item.row.get("action_type")) for item in rows)
        raise SessionFormatError(
            f"session {session_id!r}: every action was dropped ({', '.join(f'{k} x{n}' for k, n in sorted(kinds.items()))}), "
            "and a session needs at least one step; map one of these types to a kept one (action_map) or "
            "remove the session from the data",
            file=first.location,
            field="action_type",
        )
    session_fields = {}
    for column in (SOURCE_COLUMN, PERSONA_COLUMN, SESSION_EXTRA_JSON_COLUMN, SESSION_INDEX_COLUMN):
        values = {item.row.get(column) for item in rows}
        if len(values) > 1:
            raise SessionFormatError(
                f"session {session_id!r}: column '{column}' differs between its rows ({sorted(map(repr, values))})",
                file=first.location,
                field=column,
            )
        session_fields[column] = first.row.get(column)
    extra = _json_object(session_fields[SESSION_EXTRA_JSON_COLUMN], SESSION_EXTRA_JSON_COLUMN, first.location)
    if session_fields[SESSION_INDEX_COLUMN] is not None:
        order: tuple = (0, _int_column(first.row, SESSION_INDEX_COLUMN, first.location), session_id)
    else:
        order = (1, first.order[1], session_id)
    for column in (SOURCE_COLUMN, PERSONA_COLUMN):
        if session_fields[column] is not None and not isinstance(session_fields[column], str):
            raise SessionFormatError(
                f"session {session_id!r}: expected a string or null, got {session_fields[column]!r}",
                file=first.location,
                field=column,
            )
    return order, Session(
        session_id=session_id,
        steps=steps,
        # Real OPeRA files have no source column; files we wrote carry the session's own.
        source=session_fields[SOURCE_COLUMN] if SOURCE_COLUMN in first.row else "opera",
        persona=session_fields[PERSONA_COLUMN],
        extra=extra,
    )


def _opera_step(row: dict, policy: _ActionPolicy) -> Step | None:
    source_type = row.get("action_type")
    kind = policy.resolve(source_type, OPERA_ACTION_TYPES)
    if kind is None:
        return None
    consumed = set(_OPERA_STEP_COLUMNS)
    action: dict[str, Any] = {"type": kind}
    if kind in (CLICK, TYPE_AND_SUBMIT):
        action["name"] = row.get("semantic_id")
        consumed.add("semantic_id")
    if kind == TYPE_AND_SUBMIT:
        action["text"] = row.get("input_text")
        consumed.add("input_text")
    try:
        parsed_action = Action.from_dict(action)
    except SessionFormatError as err:
        column = {"action.name": "semantic_id", "action.text": "input_text"}.get(err.field or "", err.field)
        raise SessionFormatError(f"{source_type} action: {err.reason}", field=column) from None
    page = row.get("simplified_html")
    if not isinstance(page, str):
        raise SessionFormatError(
            f"expected the page's simplified HTML as a string, got {type(page).__name__}", field="simplified_html"
        )
    extra = {column: value for column, value in row.items() if column not in consumed and value is not None}
    if source_type not in OPERA_ACTION_TYPES:
        extra["source_action_type"] = source_type
    extra.update(_json_object(row.get(STEP_EXTRA_JSON_COLUMN), STEP_EXTRA_JSON_COLUMN, None))
    for column in ("url", "timestamp", "rationale"):
        if row.get(column) is not None and not isinstance(row[column], str):
            raise SessionFormatError(f"expected a string or null, got {row[column]!r}", field=column)
    return Step(
        observation=page,
        action=parsed_action,
        rationale=row.get("rationale"),
        url=row.get("url"),
        timestamp=row.get("timestamp"),
        extra=extra,
    )


def _json_object(text: str | None, column: str, location: str | None) -> dict:
    if text is None:
        return {}
    if not isinstance(text, str):
        raise SessionFormatError(f"expected a JSON object string, got {type(text).__name__}", file=location, field=column)
    try:
        value = parse_json(text)
    except SessionFormatError as err:
        raise SessionFormatError(f"expected a JSON object string: {err.reason}", file=location, field=column) from None
    if not isinstance(value, dict):
        raise SessionFormatError(f"expected a JSON object, got {type(value).__name__}", file=location, field=column)
    return value


def write_opera_parquet(sessions: Iterable[Session], path: str | os.PathLike, *, shards: int = 1) -> Path:
    """Write sessions as OPeRA action rows (string columns), the inverse of reading `format="opera"`.

    One row per step: click -> `click` with `semantic_id`, type_and_submit -> `input` with
    `semantic_id` and `input_text`, terminate -> `terminate`. String extras of a step become columns
    of the same name (so OPeRA's own columns round-trip); other extras, the session's source, persona
    and extras, and the step and session order go to the added columns (`STEP_INDEX_COLUMN` ...).
    With `shards > 1`, `path` is a directory that receives `part-00000.parquet` ... Written atomically.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    rows = list(_opera_rows(sessions))
    columns = list(OPERA_COLUMNS) + [
        STEP_INDEX_COLUMN, SESSION_INDEX_COLUMN, SOURCE_COLUMN, PERSONA_COLUMN,
        STEP_EXTRA_JSON_COLUMN, SESSION_EXTRA_JSON_COLUMN,
    ]
    columns += sorted({key for row in rows for key in row} - set(columns))
    schema = pa.schema([(column, pa.string()) for column in columns])
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except UnicodeEncodeError:
        raise _unencodable_cell(rows) from None
    path = Path(path)
    if shards == 1:
        _write_parquet_atomically(pq, table, path)
        return path
    per_shard = -(-len(rows) // shards)
    for index in range(shards):
        _write_parquet_atomically(pq, table.slice(index * per_shard, per_shard), path / f"part-{index:05d}.parquet")
    return path


def _unencodable_cell(rows: list[dict[str, str | None]]) -> SessionFormatError:
    """Which cell holds a lone surrogate: parquet strings are UTF-8, which has no encoding for one."""
    for row in rows:
        for column, value in row.items():
            if value is not None and writable(value) != value:
                return SessionFormatError(
                    f"session {row['session_id']!r}: the value holds a lone surrogate (written as "
                    f"an escape: {writable(value)[:80]}), "
                    "which parquet's UTF-8 strings cannot store; write canonical JSON Lines instead "
                    "(.jsonl keeps it as its \\udXXX escape)",
                    step=int(row[STEP_INDEX_COLUMN]),
                    field=column,
                )
    return SessionFormatError("a value holds text UTF-8 cannot encode; write canonical JSON Lines instead")


def _write_parquet_atomically(pq, table, path: Path) -> None:
    with atomic_write(path, "wb") as handle:
        pq.write_table(table, handle)


_INVERSE_OPERA_TYPES = {canonical: opera for opera, canonical in OPERA_ACTION_TYPES.items()}


def _opera_rows(sessions: Iterable[Session]) -> Iterator[dict[str, str | None]]:
    for session_index, session in enumerate(sessions):
        session_extra = json.dumps(session.extra, ensure_ascii=False) if session.extra else None
        for step_index, step in enumerate(session.steps):
            action = step.action
            row: dict[str, str | None] = {
                "session_id": session.session_id,
                "timestamp": step.timestamp,
                "action_type": _INVERSE_OPERA_TYPES[action.type],
                "url": step.url,
                "simplified_html": step.observation,
                "rationale": step.rationale,
                STEP_INDEX_COLUMN: str(step_index),
                SESSION_INDEX_COLUMN: str(session_index),
                SOURCE_COLUMN: session.source,
                PERSONA_COLUMN: session.persona,
                SESSION_EXTRA_JSON_COLUMN: session_extra,
            }
            if action.name is not None:
                row["semantic_id"] = action.name
            if action.text is not None:
                row["input_text"] = action.text
            json_extra = {}
            for key, value in step.extra.items():
                if key in row or key in _OPERA_STEP_COLUMNS:
                    raise SessionFormatError(
                        f"session {session.session_id!r}: step extra key {key!r} collides with the OPeRA "
                        "column that holds the step's own field; rename the extra key",
                        step=step_index,
                        field=key,
                    )
                if isinstance(value, str):
                    row[key] = value
                else:
                    json_extra[key] = value
            if json_extra:
                row[STEP_EXTRA_JSON_COLUMN] = json.dumps(json_extra, ensure_ascii=False)
            yield row


# --- Shop-CART per-step rows --------------------------------------------------------------------


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


def _sessions_from_shopcart_rows(rows: Iterable[tuple[str, dict]], policy: _ActionPolicy) -> list[Session]:
    grouped: dict[str, dict[int, tuple[str, dict]]] = defaultdict(dict)
    for location, row in rows:
        session_id = row.get("session_id")
        if isinstance(session_id, int) and not isinstance(session_id, bool):
            session_id = str(session_id)
        if not isinstance(session_id, str) or not session_id.strip():
            raise SessionFormatError(
                f"expected a non-empty session_id string, got {session_id!r}", file=location, field="session_id"
            )
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
    return [_shopcart_session(session_id, by_index, policy) for session_id, by_index in grouped.items()]


def _shopcart_session(session_id: str, by_index: dict[int, tuple[str, dict]], policy: _ActionPolicy) -> Session:
    missing = sorted(set(range(max(by_index) + 1)) - set(by_index))
    if missing:
        raise SessionFormatError(
            f"session {session_id!r} lacks the row(s) for step(s) {', '.join(map(str, missing))}; "
            "every step 0..n-1 needs its own row",
            file=by_index[max(by_index)][0],
            field="step",
        )
    action_map = policy.for_session_model()
    steps: list[Step] = []
    for index in range(len(by_index)):
        location, row = by_index[index]
        step_data = {key: row[key] for key in ("observation", "rationale", "url", "timestamp") if key in row}
        step_data["action"] = _action_object(row.get("action"), location, index)
        step_data.update({key: value for key, value in row.items() if key not in SHOPCART_KEYS})
        try:
            step = Step.from_dict(step_data, action_map=action_map)
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
        values = {json.dumps(row.get(key), sort_keys=True) for _, row in by_index.values()}
        if len(values) > 1:
            raise SessionFormatError(
                f"session {session_id!r}: '{key}' differs between its rows ({', '.join(sorted(values))})",
                file=first_location,
                field=key,
            )
        expected = dict if key == "session_extra" else str
        if first.get(key) is not None and not isinstance(first[key], expected):
            raise SessionFormatError(
                f"session {session_id!r}: expected {'an object' if expected is dict else 'a string'} or null, "
                f"got {first[key]!r}",
                file=first_location,
                field=key,
            )
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


# --- Hugging Face datasets ----------------------------------------------------------------------


def _read_hf_dataset(path: Path, policy: _ActionPolicy) -> list[Session]:
    """A local `datasets` dataset: rows in OPeRA, canonical or Shop-CART columns (never downloads)."""
    try:
        import datasets
    except ImportError:
        raise ImportError("format 'hf' needs the datasets package: pip install datasets") from None

    if path.is_file():
        try:
            dataset = datasets.Dataset.from_file(str(path))
        except (ValueError, OSError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise SessionFormatError(
                f"not an Arrow file of a datasets dataset ({type(err).__name__}: {err}); format 'hf' reads a "
                "save_to_disk directory or its .arrow files: for JSON Lines pass format 'jsonl' or 'shopcart' "
                "(--from jsonl / --from shopcart), or 'auto'",
                file=path,
            ) from None
    else:
        try:
            dataset = datasets.load_from_disk(str(path))
        except FileNotFoundError as err:
            raise SessionFormatError(
                f"not a datasets save_to_disk directory ({err}); for a cache directory pass its .arrow file",
                file=path,
            ) from None
        except (ValueError, OSError) as err:
            raise SessionFormatError(
                f"a datasets directory that cannot be read ({type(err).__name__}: {err}); save it again with "
                "Dataset.save_to_disk",
                file=path,
            ) from None
        if isinstance(dataset, datasets.DatasetDict):
            raise SessionFormatError(
                f"a DatasetDict with splits {', '.join(dataset)}: pass one split's directory, "
                f"e.g. {path / next(iter(dataset), 'train')}",
                file=path,
            )
    columns = set(dataset.column_names)
    rows = ((f"{path} row {index}", row) for index, row in enumerate(dataset))
    if "steps" in columns:
        sessions, seen = [], {}
        action_map = policy.for_session_model()
        for location, row in rows:
            try:
                session = Session.from_dict(row, action_map=action_map)
            except SessionFormatError as err:
                raise err.located(file=location) from None
            if session.session_id in seen:
                raise SessionFormatError(
                    f"duplicate session_id {session.session_id!r} (first at {seen[session.session_id]})",
                    file=location,
                    field="session_id",
                )
            seen[session.session_id] = location
            sessions.append(session)
        return sessions
    if "step" in columns and "observation" in columns:
        return _sessions_from_shopcart_rows(rows, policy)
    _check_opera_columns(sorted(columns), path)
    return _sessions_from_opera_rows(rows, policy)
