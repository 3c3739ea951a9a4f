"""Configuration of fidelity, memorization, attack and utility evaluation."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from medgan.configbase import Section

__all__ = ["EvaluationConfig"]


class EvaluationConfig(Section):
    """Evaluation settings; thresholds are calibrated on holdout data, not set here."""

    extractor_weights: Path | None = Field(None, description="User-supplied feature extractor weights; default: the shipped encoder.")
    n_bootstrap: int = Field(200, ge=10, description="Bootstrap resamples for confidence intervals.")
    seed: int = Field(0, description="Seed of bootstrap and pair sampling.")
