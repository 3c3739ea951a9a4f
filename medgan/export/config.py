"""Configuration of the export stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from medgan.configbase import Section

__all__ = ["ExportConfig"]


class ExportConfig(Section):
    """Export format and release policy."""

    format: Literal["nifti", "dicom", "dicom-enhanced"] = Field(
        "nifti",
        description="Output format: NIfTI files, one single-frame DICOM series per volume, or one enhanced multi-frame DICOM file per volume (needs highdicom).",
    )
    approved_only: bool = Field(False, description="Export only scans approved in the audit log (a release).")
    drop_flagged: bool = Field(
        False,
        description=(
            "Release without the scans the memorization check flagged instead of blocking the whole release. "
            "The card records this as a step not covered by epsilon, because the flags are computed on real scans."
        ),
    )
    nifti_dtype: Literal["float32", "int16"] = Field("float32", description="On-disk data type of exported NIfTI files.")
    modality: Literal["CT", "MR"] | None = Field(
        None, description="Modality of the synthetic scans when neither the report nor the labels state it."
    )
    faces_removed: bool = Field(
        False, description="The profile removes faces (defacing), so RecognizableVisualFeatures may be NO."
    )
    head_scan: bool | None = Field(
        None, description="The scans show the head; None decides from the labels and profile (brain, head, neuro)."
    )
