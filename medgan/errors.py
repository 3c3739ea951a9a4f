"""Exception hierarchy shared by every medgan stage.

Callers catch :class:`MedganError` to handle anything medgan raises on purpose; the
subclasses name the kind of problem, so the CLI can print a one-line message
instead of a traceback and exit non-zero.
"""

from __future__ import annotations

__all__ = [
    "MedganError",
    "InputError",
    "ConfigError",
    "PrivacyError",
    "ReviewError",
    "LeakError",
]


class MedganError(Exception):
    """Base class for every error medgan raises deliberately."""


class InputError(MedganError):
    """A scan, manifest or folder is unreadable, inconsistent or unsafe to use."""


class ConfigError(MedganError):
    """A pipeline or command option has an invalid value or an unsupported combination."""


class PrivacyError(MedganError):
    """A setting or action would break the differential-privacy guarantee or the ledger."""


class ReviewError(MedganError):
    """A review decision, reviewer identity or audit log is invalid."""


class LeakError(MedganError):
    """An export contains an identifier of a real patient or a site path."""
