"""Configuration of the export stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from medgan.configbase import Section

__all__ = ["ExportConfig"]


class ExportConfig(Section):
    """Export format and release policy."""

    format: Literal["nifti", "dicom"] = Field("nifti", description="Output format of the exported volumes.")
    approved_only: bool = Field(False, description="Export only scans approved in the audit log (a release).")
