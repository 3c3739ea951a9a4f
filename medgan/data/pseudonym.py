"""Salted pseudonymous identifiers for patients and scans.

From the moment a manifest is read, medgan refers to patients and scans only by these
ids.  They are HMAC-SHA256 digests keyed by a random per-run salt that stays in the
run's private folder, so the ids cannot be reversed or matched across sites by
hashing known patient ids.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from medgan.fileio import write_bytes_atomic

__all__ = ["Pseudonymizer", "load_or_create_salt"]

_SALT_BYTES = 32
_ID_HEX_CHARS = 12


def load_or_create_salt(path: Path) -> bytes:
    """Return the salt stored at ``path``, creating a fresh random one if it is missing."""
    if path.exists():
        salt = path.read_bytes()
        if len(salt) != _SALT_BYTES:
            raise ValueError(f"salt file {path} is invalid: {len(salt)} bytes, expected {_SALT_BYTES}. Delete it to create a new salt")
        return salt
    salt = secrets.token_bytes(_SALT_BYTES)
    write_bytes_atomic(path, salt)
    path.chmod(0o600)
    return salt


class Pseudonymizer:
    """Map real patient ids and scan paths to stable salted ids such as ``pat-3f2a...``."""

    def __init__(self, salt: bytes) -> None:
        if len(salt) < 16:
            raise ValueError(f"salt must be at least 16 bytes, got {len(salt)}")
        self._salt = salt

    def _digest(self, kind: str, value: str) -> str:
        message = f"{kind}:{value}".encode("utf-8")
        return hmac.new(self._salt, message, hashlib.sha256).hexdigest()[:_ID_HEX_CHARS]

    def patient_id(self, real_patient_id: str) -> str:
        """Return the pseudonymous id of a patient."""
        return "pat-" + self._digest("patient", real_patient_id)

    def scan_id(self, source: str) -> str:
        """Return the pseudonymous id of a scan, keyed on its resolved source path."""
        return "scan-" + self._digest("scan", source)
