"""Configuration of ingest and preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

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

    grid: int = Field(32, ge=2, description="Edge length of the cubic model grid in voxels (16, 32, 64 or 128).")
    spacing_mm: float = Field(
        8.0,
        gt=0,
        description=(
            "Isotropic voxel spacing of the model grid in mm; grid x spacing_mm is the field of view "
            "(32 x 8 mm = 256 mm covers a whole head and most of an adult chest)."
        ),
    )
    fit: Literal["crop_pad", "resize"] = Field(
        "crop_pad",
        description=(
            "How a resampled scan meets the grid: 'crop_pad' keeps spacing_mm exactly and crops or pads "
            "around the scan's centre; 'resize' pads the scan to a cube and scales it to the grid, so the "
            "whole scan fits but spacing_mm is only nominal."
        ),
    )
    antialias: bool = Field(
        True, description="Area-average finer axes down to spacing_mm before interpolating, so thin structures do not alias."
    )
    ct_window: tuple[float, float] = Field((-1000.0, 1000.0), description="HU window mapped to [-1, 1] for CT.")
    mr_percentiles: tuple[float, float] = Field((0.5, 99.5), description="Percentiles mapped to [-1, 1] for MR.")

    @field_validator("ct_window", "mr_percentiles")
    @classmethod
    def _check_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"the lower bound must be below the upper bound, got {list(value)}")
        return value

    @field_validator("mr_percentiles")
    @classmethod
    def _check_percentiles(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not (0.0 <= value[0] and value[1] <= 100.0):
            raise ValueError(f"percentiles must lie in [0, 100], got {list(value)}")
        return value
