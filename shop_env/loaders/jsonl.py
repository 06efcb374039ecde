"""Canonical session JSON Lines (docs/contract.md, the canonical session format), and the JSON Lines
row reader the Shop-CART format shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from shop_env.loaders.action_types import ActionTypes
from shop_env.session import Session, SessionFormatError, iter_json_lines, read_jsonl


def read_canonical_jsonl(path: Path, types: ActionTypes) -> list[Session]:
    if path.is_dir():
        raise SessionFormatError("format 'jsonl' reads one file, got a directory", file=path)
    return read_jsonl(path, map_type=types.resolve)


def jsonl_rows(path: Path) -> Iterator[tuple[str, dict]]:
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


def first_jsonl_row(path: Path) -> tuple[int, dict | None]:
    return next(_jsonl_objects(path), (0, None))
