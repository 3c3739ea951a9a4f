"""Find runs under the dashboard's runs folder and resolve paths without leaving it.

Every file the dashboard opens on request (a run, a synthetic scan, a report asset) is
named relative to the runs folder and goes through :func:`resolve_inside`, which rejects
absolute paths, ``..`` components and symbolic links that lead outside the folder.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from medgan.errors import InputError

__all__ = ["resolve_inside", "discover_runs"]

logger = logging.getLogger(__name__)


def resolve_inside(root: Path, relative: str) -> Path:
    """Return ``root / relative`` resolved, or raise if it would leave ``root``.

    Raises:
        InputError: ``relative`` is empty, absolute, contains ``..`` or a NUL byte, or
            resolves (through symbolic links) to a place outside ``root``.
    """
    text = str(relative)
    if not text or "\x00" in text or "\\" in text:
        raise InputError(f"path {relative!r} is invalid; name a file inside the runs folder")
    pure = PurePosixPath(text)
    if pure.is_absolute() or ".." in pure.parts:
        raise InputError(f"path {relative!r} points outside the runs folder; only files inside {root.name}/ can be opened")
    base = Path(root).resolve()
    candidate = (base / pure).resolve()
    if not candidate.is_relative_to(base):
        raise InputError(f"path {relative!r} resolves outside the runs folder (through a symbolic link); only files inside {root.name}/ can be opened")
    return candidate


def discover_runs(root: Path) -> list[str]:
    """Return the names of run folders under ``root``: ``"."`` for root itself, then children with a report.json.

    Raises:
        InputError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"runs folder {root} not found; pass the folder that contains your run folders with --runs")
    names = ["."] if (root / "report.json").is_file() else []
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        try:
            folder = resolve_inside(root, child.name)
        except InputError:
            logger.warning("skipping %s: it links outside the runs folder", child.name)
            continue
        if folder.is_dir() and (folder / "report.json").is_file():
            names.append(child.name)
    return names
