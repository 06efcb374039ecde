"""OPeRA action tables (docs/contract.md, data sources): read `filtered_action` / `full_action` parquet
shards into sessions, and write sessions back as such rows (`write_opera_parquet`).

Rows are grouped by `session_id` and ordered by `timestamp` (then `action_id`); `click` ->
click(name=semantic_id), `input` -> type_and_submit(name=semantic_id, text=input_text), `terminate` ->
terminate. `simplified_html` is the observation (stored as given); `url`, `timestamp` and `rationale`
fill the step's fields, and every other non-null column (action_id, click_type, mouse_position,
element_meta, page_meta, products, image, the `full_*` extras ...) is kept in `step.extra` under its
column name, so nothing is lost.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shop_env.atomic_io import atomic_write, writable
from shop_env.loaders.action_types import ActionTypes
from shop_env.loaders.checks import optional_of_type, same_on_every_row
from shop_env.session import CLICK, TERMINATE, TYPE_AND_SUBMIT, Action, Session, SessionFormatError, Step, parse_json

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


_SPLIT_SHARD = re.compile(r"^(train|test|validation|valid|dev)[-_.]")


def is_parquet_glob(path: Path) -> bool:
    return path.name.endswith(".parquet") and any(char in path.name for char in "*?[")


def parquet_files(path: Path, *, required: bool = True) -> list[Path]:
    """The shards to read: the file itself, the files a pattern (`train-*.parquet`) matches, or every
    .parquet file under a directory, refusing a directory that mixes splits (OPeRA keeps train-* and
    test-* shards side by side)."""
    if path.is_file():
        return [path]
    if is_parquet_glob(path):
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


def parquet_rows(path: Path) -> Iterator[tuple[str, dict]]:
    """(location, row) for every row of every shard, checking each shard's schema first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for file in parquet_files(path):
        try:
            parquet = pq.ParquetFile(file)
        except (pa.ArrowException, OSError) as err:
            raise SessionFormatError(f"not a readable parquet file ({err})", file=file) from None
        schema = parquet.schema_arrow
        check_opera_columns(schema.names, file)
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


def check_opera_columns(columns: Sequence[str], where: Path | str) -> None:
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


def sessions_from_opera_rows(rows: Iterable[tuple[str, dict]], types: ActionTypes) -> list[Session]:
    grouped: dict[str, list[_OperaRow]] = defaultdict(list)
    for location, row in rows:
        session_id = row.get("session_id")
        if not isinstance(session_id, str) or not session_id.strip():
            raise SessionFormatError(
                f"expected a non-empty session_id string, got {session_id!r}", file=location, field="session_id"
            )
        grouped[session_id].append(_OperaRow(location, row, _opera_order(location, row)))
    types.check_known(
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
        sessions.append(_opera_session(session_id, session_rows, types))
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


def _opera_session(session_id: str, rows: list[_OperaRow], types: ActionTypes) -> tuple[tuple, Session]:
    """The session and its sort key among sessions: `session_index` when the file has it, else the
    first timestamp. A session whose every action was dropped is an error, as in the other formats."""
    steps = []
    for item in rows:
        try:
            step = _opera_step(item.row, types)
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
        same_on_every_row(session_id, column, (item.row.get(column) for item in rows), file=first.location)
        session_fields[column] = first.row.get(column)
    extra = _json_object(session_fields[SESSION_EXTRA_JSON_COLUMN], SESSION_EXTRA_JSON_COLUMN, first.location)
    if session_fields[SESSION_INDEX_COLUMN] is not None:
        order: tuple = (0, _int_column(first.row, SESSION_INDEX_COLUMN, first.location), session_id)
    else:
        order = (1, first.order[1], session_id)
    for column in (SOURCE_COLUMN, PERSONA_COLUMN):
        optional_of_type(session_id, column, session_fields[column], str, file=first.location)
    return order, Session(
        session_id=session_id,
        steps=steps,
        # Real OPeRA files have no source column; files we wrote carry the session's own.
        source=session_fields[SOURCE_COLUMN] if SOURCE_COLUMN in first.row else "opera",
        persona=session_fields[PERSONA_COLUMN],
        extra=extra,
    )


def _opera_step(row: dict, types: ActionTypes) -> Step | None:
    source_type = row.get("action_type")
    kind = types.resolve(source_type, OPERA_ACTION_TYPES)
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
