"""Load recorded shopping sessions from every format the project meets, into canonical `Session`s.

`load_sessions(path, format="auto")` reads, one module per source:

- `jsonl` (`loaders/jsonl.py`): canonical sessions, one per line (docs/contract.md, the canonical
  session format), plain or `.gz`; detected from a `.jsonl` / `.jsonl.gz` file whose first row has `steps`;
- `opera` (`loaders/opera.py`): OPeRA `filtered_action` / `full_action` rows (docs/contract.md, data
  sources), one `.parquet` file, a pattern (`OPeRA_filtered/action/train-*.parquet`) or a directory of
  shards of one split; detected from `.parquet` files;
- `hf` (`loaders/hf.py`): a Hugging Face `datasets` dataset on local disk, a `save_to_disk` directory or
  a cached `.arrow` file, whose columns may be OPeRA's, canonical sessions or Shop-CART rows; detected
  from `state.json` / `dataset_info.json` in the directory, or the `.arrow` suffix;
- `shopcart` (`loaders/shopcart.py`): Shop-CART-style per-step examples, JSON Lines, plain or `.gz`;
  detected from a `.jsonl` file whose first row has `step` and `observation`.

`bundled_sessions(split)` (`loaders/bundled.py`) gives the sessions shipped with the package, and
`resolve_sessions` whatever `--sessions` names. Nothing here downloads: every path is a local file or
directory. Every bad row raises `SessionFormatError` naming the file and line (or parquet file and row,
or dataset row), the session, the step and the field; a corrupt row is an error, never skipped. Action
types outside the paper's three go through one mapping step before validation
(`loaders/action_types.py`): mapped, dropped (counted and logged), or refused with the allowed types.
`convert_sessions` writes any of them as canonical JSONL, OPeRA parquet or Shop-CART rows.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shop_env.atomic_io import atomic_write
from shop_env.loaders.action_types import ActionTypes
from shop_env.loaders.bundled import BUNDLED_SPLITS, bundled_sessions
from shop_env.loaders.hf import read_hf_dataset
from shop_env.loaders.jsonl import first_jsonl_row, jsonl_rows, read_canonical_jsonl
from shop_env.loaders.opera import (
    OPERA_ACTION_TYPES,
    OPERA_COLUMNS,
    OPERA_REQUIRED_COLUMNS,
    is_parquet_glob,
    parquet_files,
    parquet_rows,
    sessions_from_opera_rows,
    write_opera_parquet,
)
from shop_env.loaders.shopcart import SHOPCART_KEYS, sessions_from_shopcart_rows, shopcart_rows
from shop_env.session import Session, SessionFormatError, check_readable, write_jsonl

__all__ = [
    "BUNDLED_SPLITS", "FORMATS", "OPERA_ACTION_TYPES", "OPERA_COLUMNS", "OPERA_REQUIRED_COLUMNS", "OUTPUT_FORMATS",
    "SHOPCART_KEYS", "LoadedSessions", "bundled_sessions", "convert_sessions", "detect_format", "load_sessions",
    "resolve_sessions", "shopcart_rows", "write_opera_parquet",
]

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("jsonl", "opera", "hf", "shopcart")
"""Formats `load_sessions` reads; pass one as `format=` or let "auto" detect it."""


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
    if not is_parquet_glob(path):
        check_readable(path)
    if format == "auto":
        format = detect_format(path)
        logger.info("load_sessions: %s read as %r", path, format)
    elif format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected 'auto' or one of {', '.join(FORMATS)}")
    types = ActionTypes(action_map, drop_unknown_actions)
    if format == "jsonl":
        sessions = read_canonical_jsonl(path, types)
    elif format == "opera":
        sessions = sessions_from_opera_rows(parquet_rows(path), types)
    elif format == "shopcart":
        sessions = sessions_from_shopcart_rows(jsonl_rows(path), types)
    else:
        sessions = read_hf_dataset(path, types)
    types.log_dropped(path)
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
        shards = parquet_files(path, required=False)
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
        line_no, row = first_jsonl_row(path)
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
