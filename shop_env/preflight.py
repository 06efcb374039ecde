"""What a command sets and checks before its expensive part (importing the model libraries, loading a model).

- `stay_offline()`: the switches that keep the Hugging Face libraries off the network. Models come from
  local directories and the local HF cache only (`agents.models`), so no lookup of the Hub is ever
  needed; without the switches TRL's trainers send a telemetry ping when they are created and
  huggingface_hub fetches its list of AI-agent harnesses for the request headers.
- `writable_dir(path)`: the output directory exists and takes a file, checked before hours of work
  would end in a failed write.
- `config_changes(previous, current)`: what differs between the config a directory's results were made
  with and the one asked for now, so a command can refuse to present old results as new ones.

Nothing here imports torch or a model library, so `shop_env` stays importable without them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub: no request to the Hub at all (downloads, agent-harness registry, telemetry)
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub's send_telemetry, which TRL's trainers call (TRL has no switch of its own)
    "TRANSFORMERS_OFFLINE": "1",  # transformers' older spelling of HF_HUB_OFFLINE, still read by huggingface_hub
    "HF_DATASETS_OFFLINE": "1",  # datasets: no Hub lookup when a dataset is loaded
}
"""Environment switches `stay_offline` sets, each read by the library named beside it."""

_TRUE = {"1", "ON", "YES", "TRUE"}


def _is_set(name: str) -> bool:
    return os.environ.get(name, "").upper() in _TRUE


def stay_offline() -> None:
    """Keep the Hugging Face libraries off the network in this process and the processes it starts.

    Each switch is set unless the environment already gives it a value, so a user who sets them to 0
    can still download. huggingface_hub and datasets read them once, when they are first
    imported; when that happened before this call, their module-level copies are updated too, which
    is what the telemetry ping, the agent-harness lookup and downloads consult at call time.
    """
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        # huggingface_hub's own rule: the first of the two that is set decides
        hub.HF_HUB_OFFLINE = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").upper() in _TRUE
        hub.HF_HUB_DISABLE_TELEMETRY = hub.HF_HUB_DISABLE_TELEMETRY or _is_set("HF_HUB_DISABLE_TELEMETRY")
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = datasets_config.HF_DATASETS_OFFLINE = _is_set("HF_DATASETS_OFFLINE")


def writable_dir(path: str | os.PathLike, *, option: str = "--out") -> Path:
    """Create `path` if needed and write (and remove) a file in it; a PermissionError naming `option` when that fails.

    Results are written through temp files beside their targets (`shop_env.atomic_io`), so a directory
    that takes this probe file takes them too.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        raise PermissionError(f"{option} {path} is not a writable directory ({reason}); choose another {option}") from None
    return path


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_changes(previous: Mapping[str, Any], current: Mapping[str, Any], *, may_change: Iterable[str] = ()) -> list[str]:
    """Every setting that differs, as 'key: old -> new', nested ones by dotted key ('grpo.reward.alpha').

    >>> config_changes({"lr": 1e-7, "reward": {"alpha": 0.005}}, {"lr": 1e-7, "reward": {"alpha": 0.5}})
    ['reward.alpha: 0.005 -> 0.5']
    """
    old, new, allowed = _flatten(previous), _flatten(current), set(may_change)
    return [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(old.keys() | new.keys())
        if key not in allowed and old.get(key) != new.get(key)
    ]
