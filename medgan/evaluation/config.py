"""Configuration of fidelity, memorization, attack and utility evaluation."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from medgan.configbase import Section

__all__ = ["EvaluationConfig"]


class EvaluationConfig(Section):
    """Evaluation settings; copy thresholds are calibrated on holdout data, not set here."""

    extractor_weights: Path | None = Field(None, description="User-supplied feature extractor weights; default: the shipped encoder.")
    n_bootstrap: int = Field(200, ge=10, description="Bootstrap resamples for confidence intervals.")
    seed: int = Field(0, description="Seed of bootstrap and pair sampling.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Coverage of reported confidence intervals.")
    min_samples: int = Field(
        5, ge=2, description="Minimum scans per set for feature-space distances (FID, KID, MMD); below it they are not computable."
    )
    ms_ssim_pairs: int = Field(64, ge=1, description="Random pairs per set for MS-SSIM diversity.")
    histogram_bins: int = Field(64, ge=8, description="Bins of intensity histograms over [-1, 1].")
    min_per_condition: int = Field(5, ge=2, description="Minimum scans per set for a per-condition metric.")
    retrieval_grid: int = Field(16, ge=4, description="Grid of the coarse retrieval vectors (stage one of the copy search).")
    align_grid: int = Field(32, ge=8, description="Grid on which candidates are aligned and compared (stage two).")
    candidates: int = Field(8, ge=1, description="Training scans per retrieval kind aligned in stage two for each query.")
    max_shift_fraction: float = Field(0.15, ge=0.0, le=0.5, description="Largest shift searched, as a fraction of the grid.")
    smoothing_fraction: float = Field(
        1.0 / 16.0, ge=0.0, le=0.25, description="Gaussian sigma, as a share of the align grid, applied before comparing so noise and resampling do not hide a copy."
    )
    chunk_size: int = Field(64, ge=1, description="Queries per chunk of the copy search; bounds memory.")
    copy_quantile: float = Field(
        0.05, gt=0.0, lt=0.5, description="Quantile of holdout-to-train distances that calibrates the copy threshold."
    )
    copy_distance_ratio: float = Field(
        0.5, gt=0.0, le=1.0, description="A synthetic scan is a copy when its distance to a training scan is below this share of the calibration quantile."
    )
    attack_fraction: float = Field(
        0.5, gt=0.0, lt=1.0, description="Share of holdout scans kept apart for the membership attack, unused by copy calibration."
    )
    min_attack_nonmembers: int = Field(100, ge=10, description="Minimum non-members for TPR at 1% FPR to be reported.")
    utility_epochs: int = Field(30, ge=1, description="Training epochs of the utility classifier.")
    utility_min_per_class: int = Field(3, ge=1, description="Minimum scans per class in each set for the utility test.")
