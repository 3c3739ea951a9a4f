"""Atomic training checkpoints holding every piece of state a bit-exact resume needs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from medgan.errors import InputError
from medgan.fileio import atomic_path

__all__ = ["CHECKPOINT_NAME", "save_checkpoint", "load_checkpoint"]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/last.pt`` through a temporary file and a rename.

    A run killed while saving keeps the previous checkpoint intact.
    """
    path = Path(directory) / CHECKPOINT_NAME
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
    return path


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    """Return the state saved in ``directory``, or ``None`` if there is none.

    Raises:
        InputError: the checkpoint exists but cannot be read.
    """
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several unrelated types for a damaged file
        raise InputError(f"checkpoint {path} cannot be read ({type(error).__name__}); delete it to start over") from None
