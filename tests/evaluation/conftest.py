"""Shared fixtures of the evaluation tests."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from medgan.data.dataset import PreparedScan  # noqa: E402


def as_scans(volumes: np.ndarray, split: str, *, labels: list[dict[str, str]] | None = None, offset: int = 0) -> list[PreparedScan]:
    """Wrap ``(N, 1, G, G, G)`` volumes as PreparedScan objects with pseudonymous ids."""
    scans = []
    for index, volume in enumerate(volumes):
        number = offset + index
        scan_id = f"syn-{number:04d}.nii.gz" if split == "synthetic" else f"scan-{number:012x}"
        scans.append(
            PreparedScan(
                scan_id=scan_id,
                patient_id="" if split == "synthetic" else f"pat-{number:012x}",
                split=split,
                labels=dict(labels[index]) if labels else {},
                modality="MR",
                array=np.ascontiguousarray(volume, dtype=np.float32),
            )
        )
    return scans


@pytest.fixture
def scans_from():
    """Return :func:`as_scans`."""
    return as_scans
