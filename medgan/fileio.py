"""Atomic file writes and content hashing.

Every file medgan writes goes to a temporary name in the destination folder first and
is renamed into place, so a crash or a rejected input never leaves a half-written
report, checkpoint or export behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_bytes_atomic", "write_text_atomic", "write_json_atomic", "sha256_file"]


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it into place on success.

    The temporary file keeps the destination's suffixes (``.nii.gz`` stays ``.nii.gz``)
    because some writers, nibabel among them, choose the format from the file name.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(destination.suffixes)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.stem}.", suffix=f".tmp{suffix}", dir=destination.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.replace(temporary_path, destination)
    finally:
        if temporary_path.exists():
            temporary_path.unlink()


def write_bytes_atomic(destination: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``destination`` through a temporary file and a rename."""
    with atomic_path(destination) as temporary:
        with open(temporary, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())


def write_text_atomic(destination: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``destination`` atomically."""
    write_bytes_atomic(destination, text.encode("utf-8"))


def write_json_atomic(destination: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``destination`` atomically."""
    write_text_atomic(destination, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's bytes, read in chunks to bound memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
