"""Fixtures shared by the ingest tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def ramp() -> np.ndarray:
    """An 8x6x5 int16 volume whose every voxel differs: value = 100*k + 10*j + i."""
    i, j, k = np.meshgrid(np.arange(8), np.arange(6), np.arange(5), indexing="ij")
    return (100 * k + 10 * j + i).astype(np.int16)
