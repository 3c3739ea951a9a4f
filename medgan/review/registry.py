"""Local reviewer registry: who may sign in to the dashboard and with which role.

Sites without an OpenID Connect identity provider keep reviewers in a JSON file with
argon2id password hashes (salted and deliberately slow, via ``argon2-cffi``).  Sites with
a provider register each reviewer's e-mail address without a password, so the provider
authenticates and the registry only assigns the role.  A typed name alone never signs
anyone in.

The registry file defaults to ``$MEDGAN_REVIEWER_REGISTRY`` or
``~/.config/medgan/reviewers.json`` and is written atomically with mode 0600.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medgan.errors import ReviewError
from medgan.fileio import write_text_atomic
from medgan.review.audit import ROLES

__all__ = ["Identity", "ReviewerRegistry", "default_registry_path", "MIN_PASSWORD_LENGTH", "REGISTRY_ENV"]

logger = logging.getLogger(__name__)

REGISTRY_ENV = "MEDGAN_REVIEWER_REGISTRY"
MIN_PASSWORD_LENGTH = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{1,127}$")


def default_registry_path() -> Path:
    """Return ``$MEDGAN_REVIEWER_REGISTRY``, else ``$XDG_CONFIG_HOME/medgan/reviewers.json``."""
    if os.environ.get(REGISTRY_ENV):
        return Path(os.environ[REGISTRY_ENV])
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "medgan" / "reviewers.json"


@dataclass(frozen=True)
class Identity:
    """A signed-in reviewer as recorded in the audit log."""

    name: str
    role: str
    source: str
    """``local`` (registry password) or ``oidc`` (the site's identity provider)."""


class ReviewerRegistry:
    """Reviewer names, roles and password hashes stored in one JSON file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_registry_path()
        self._hasher = PasswordHasher()

    def _load(self) -> dict[str, dict[str, str | None]]:
        if not self.path.is_file():
            return {}
        try:
            payload = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ReviewError(f"reviewer registry {self.path} is unreadable ({error}); restore it or add reviewers again with `medgan reviewers add`") from error
        reviewers = payload.get("reviewers") if isinstance(payload, dict) else None
        if not isinstance(reviewers, dict):
            raise ReviewError(f"reviewer registry {self.path} has no 'reviewers' object; restore it or add reviewers again with `medgan reviewers add`")
        return reviewers

    def add(self, name: str, role: str, password: str | None) -> None:
        """Add or replace a reviewer.

        Args:
            name: sign-in name (letters, digits and ``._@+-``); the e-mail address for
                reviewers who sign in through the identity provider.
            role: ``reviewer`` or ``privacy-officer``.
            password: at least ``MIN_PASSWORD_LENGTH`` characters, or None for a
                reviewer who signs in only through the identity provider.

        Raises:
            ReviewError: the name, role or password is invalid.
        """
        if not _NAME.match(name):
            raise ReviewError(f"reviewer name {name!r} is invalid; use 2-128 letters, digits or . _ @ + - starting with a letter or digit")
        if role not in ROLES:
            raise ReviewError(f"role {role!r} is invalid; use one of {', '.join(ROLES)}")
        if password is not None and len(password) < MIN_PASSWORD_LENGTH:
            raise ReviewError(f"the password for {name} is shorter than {MIN_PASSWORD_LENGTH} characters; choose a longer one")
        reviewers = self._load()
        reviewers[name] = {"role": role, "password_hash": self._hasher.hash(password) if password is not None else None}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps({"reviewers": reviewers}, indent=2) + "\n")
        os.chmod(self.path, 0o600)
        logger.info("registered reviewer %s with role %s", name, role)

    def list(self) -> list[tuple[str, str, bool]]:
        """Return ``(name, role, has_password)`` for every reviewer, sorted by name."""
        return [(name, entry.get("role") or "", bool(entry.get("password_hash"))) for name, entry in sorted(self._load().items())]

    def authenticate(self, name: str, password: str) -> Identity | None:
        """Return the identity when ``password`` matches ``name``'s hash, else None.

        A reviewer without a password hash (identity-provider only) never passes here.
        """
        entry = self._load().get(name.strip())
        stored = entry.get("password_hash") if entry else None
        if not stored:
            # Hash anyway, so an unknown name takes as long as a wrong password.
            self._hasher.hash(password or "-")
            return None
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return Identity(name=name.strip(), role=str(entry["role"]), source="local")

    def role_of(self, name: str) -> str | None:
        """Return the registered role of ``name`` (used for identity-provider sign-ins)."""
        entry = self._load().get(name)
        return str(entry["role"]) if entry else None
