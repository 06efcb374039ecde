"""Lazy public names for the project's packages: `import agents` must not import torch.

Each package lists `name -> module` and gets a module-level `__getattr__` (PEP 562) that imports
the module on first use and caches the value in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
