"""Lazy attribute loading for packages whose members import torch.

``medgan.config`` imports the ``config`` module of several subpackages, and reading a
pipeline file must not pay for importing torch, so those packages resolve their heavy
members on first access through :func:`lazy_getattr`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, members: dict[str, str]) -> Callable[[str], Any]:
    """Return a module-level ``__getattr__`` that imports ``members[name]`` on first use."""

    def __getattr__(name: str) -> Any:
        if name in members:
            return getattr(importlib.import_module(members[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
