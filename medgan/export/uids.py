"""Fresh DICOM UIDs.

Every exported series gets new Study, Series, SOP Instance and Frame of Reference UIDs
from the ``2.25`` root (a UUID written as a decimal integer), so two exports never
share a UID and no UID of a source scan is ever carried over.
"""

from __future__ import annotations

import re

from pydicom.uid import generate_uid

__all__ = ["new_uid", "is_valid_uid"]

_UID_PATTERN = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_MAX_UID_LENGTH = 64


def is_valid_uid(uid: str) -> bool:
    """Return True when ``uid`` follows the DICOM rules (PS3.5 9.1).

    At most 64 characters, digits and dots only, no empty component and no leading
    zero in a component other than a lone ``0``.
    """
    return len(uid) <= _MAX_UID_LENGTH and _UID_PATTERN.match(uid) is not None


def new_uid() -> str:
    """Return a new random UID under the ``2.25`` UUID root."""
    uid = str(generate_uid(prefix=None))
    if not is_valid_uid(uid):  # pragma: no cover - generate_uid's contract
        raise RuntimeError(f"pydicom generated an invalid UID {uid!r}")
    return uid
