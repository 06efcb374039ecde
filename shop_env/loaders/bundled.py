"""The procedural-shop sessions shipped with the package: `bundled:train` (1,000 sessions) and
`bundled:test` (200), read from `shop_env.assets` (the repo's assets/) with importlib.resources."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from shop_env.session import Session, read_jsonl

BUNDLED_SPLITS: tuple[str, ...] = ("train", "test")


def assets_dir() -> Path:
    """The package's data directory: the repo's assets/ in a checkout, `shop_env/assets` once installed."""
    return Path(str(files("shop_env.assets")))


def bundled_sessions(split: str) -> list[Session]:
    """The procedural-shop sessions shipped in the package (`assets/sessions_{split}.jsonl.gz` in the repo,
    `shop_env.assets` once installed), for split "train" or "test".

    Parsed once per process; every call returns fresh Session and Step objects (with their own step
    lists and extras), so callers may change what they get. Actions are frozen and shared.
    """
    if split not in BUNDLED_SPLITS:
        raise ValueError(f"unknown bundled split {split!r}; expected one of {', '.join(BUNDLED_SPLITS)}")
    path = assets_dir() / f"sessions_{split}.jsonl.gz"
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
