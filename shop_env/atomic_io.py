"""Atomic result files: write to a temp file beside the target, then rename over it.

A run killed mid-write (SIGKILL, power loss) then leaves either the old file or the new one, never a
truncated one. Every result file of the project (sessions, metrics, reports, configs) goes through here.

Text is written as UTF-8 with one exception, `UNENCODABLE`: a lone surrogate (which JSON can carry as
an escape such as "\\ud83d", in a session file or a model's response, but UTF-8 cannot encode) is
written as that same six-character escape. Inside JSON written with `ensure_ascii=False` a lone
surrogate can only sit in a string, where the escape reads back as the very same character, so
whatever was loaded or emitted is written back and reads back unchanged (only two adjacent
surrogates that form a pair, which JSON never yields, read back as the one character they encode,
as with any JSON writer), and valid text keeps its plain UTF-8 bytes. `writable(text)` applies the same rule to text headed elsewhere (a tokenizer, a
terminal).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

UNENCODABLE = "backslashreplace"
"""The codec error handler of every text file written here: a lone surrogate becomes its \\udXXX escape."""


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temp file for writing; on success fsync it and rename it to `path`.

    `mode` is "w" (text, UTF-8) or "wb"; a path ending in .gz is gzip-compressed text.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; the result gets what open() would give
        with os.fdopen(fd, "wb") as raw:
            if path.suffix == ".gz":
                # No timestamp or temp name in the gzip header: the same content gives the same bytes.
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
                    with io.TextIOWrapper(zipped, encoding="utf-8", errors=UNENCODABLE) as handle:
                        yield handle
            elif "b" in mode:
                yield raw
            else:
                handle = io.TextIOWrapper(raw, encoding="utf-8", errors=UNENCODABLE)
                yield handle
                handle.flush()
                handle.detach()  # leave `raw` open for the fsync below
            if not raw.closed:
                raw.flush()
                os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_figure(figure: Any, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure as a PNG atomically (laid out tight, 120 dpi), then close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    plt.close(figure)
    return Path(path)


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def writable(text: str) -> str:
    """`text` as the files here record it: each lone surrogate (no UTF-8 encoder or tokenizer takes
    one) replaced by its \\udXXX escape; any other text is returned as it is.

    >>> writable("caf\\u00e9 \\ud83d")
    'café \\\\ud83d'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", UNENCODABLE).decode("utf-8")
    return text


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and fsync, so a crash loses at most the line being written.

    A torn last line (from a SIGKILL mid-write) is ignored by `read_jsonl_records`.
    """
    with open(path, "a", encoding="utf-8", errors=UNENCODABLE) as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl_records(path: str | os.PathLike) -> list[dict]:
    """Read an append-only JSON Lines log, dropping only a torn final line (a crash mid-append)."""
    path = Path(path)
    if not path.exists():
        return []
    # Split on "\n" only: str.splitlines also splits at U+0085, U+2028 and others, which JSON written
    # with ensure_ascii=False keeps raw inside strings.
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: corrupt JSON line in the middle of the log") from None
    return records
