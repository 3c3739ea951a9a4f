"""Tiny generated cohorts and models for the training tests."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.data.dataset import PreparedCohort, PreparedScan
from medgan.models import ModelConfig

TINY_MODEL = ModelConfig(latent_dim=8, base_channels=4, disc_channels=4, groups=2, label_embedding_dim=2)


def make_cohort(scans_per_patient: list[int], grid: int = 16, seed: int = 0, modality: str = "CT") -> PreparedCohort:
    """A train split of random volumes; patient ``i`` has ``scans_per_patient[i]`` scans, labels alternate."""
    rng = np.random.default_rng(seed)
    scans = []
    for patient, count in enumerate(scans_per_patient):
        for index in range(count):
            array = rng.uniform(-1, 1, size=(1, grid, grid, grid)).astype(np.float32)
            scans.append(
                PreparedScan(
                    scan_id=f"scan-{patient:06x}{index:06x}",
                    patient_id=f"pat-{patient:012x}",
                    split="train",
                    labels={"scan_type": "a" if patient % 2 == 0 else "b"},
                    modality=modality,
                    array=array,
                )
            )
    return PreparedCohort(scans=scans, label_names=["scan_type"], label_values={"scan_type": ["a", "b"]}, grid=grid)


@pytest.fixture
def tiny_model() -> ModelConfig:
    return TINY_MODEL
