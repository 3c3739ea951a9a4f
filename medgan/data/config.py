"""Configuration of ingest and preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from medgan.configbase import Section

__all__ = ["DataConfig", "PreprocessConfig"]


class DataConfig(Section):
    """Where the cohort is and how it is split and screened."""

    manifest: Path = Field(description="Cohort manifest CSV; relative paths resolve against the pipeline file.")
    holdout_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of patients without a split that go to holdout.")
    allow_identifying_series: bool = Field(
        False, description="Load localizers, Secondary Capture and burned-in-annotation series, which may show identifying text."
    )
    nonfinite: Literal["reject", "replace"] = Field("reject", description="What to do with NaN/Inf voxels.")
    nonfinite_value: float = Field(0.0, description="Replacement for NaN/Inf voxels when nonfinite is 'replace'.")
    cache_dir: Path | None = Field(None, description="Preprocessed-volume cache; defaults to the run's private/cache.")


class PreprocessConfig(Section):
    """Preprocessing profile: the same chain is used for training, evaluation and export geometry."""

    grid: int = Field(32, description="Edge length of the cubic model grid in voxels (16, 32, 64 or 128).")
    spacing_mm: float = Field(4.0, gt=0, description="Isotropic voxel spacing of the model grid in mm.")
    ct_window: tuple[float, float] = Field((-1000.0, 1000.0), description="HU window mapped to [-1, 1] for CT.")
    mr_percentiles: tuple[float, float] = Field((0.5, 99.5), description="Percentiles mapped to [-1, 1] for MR.")
