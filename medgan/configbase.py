"""Base class for medgan's typed configuration sections.

Every section forbids unknown keys, because a misspelt option that is silently ignored
(``noise_multipler: 1.0``) would train with a default the user never chose.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """A configuration section: immutable after validation, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
