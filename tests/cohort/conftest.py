"""A tiny simulated cohort shared by the cohort tests: 24 patients at 16^3, 2 scans each."""

from __future__ import annotations

from pathlib import Path

import pytest

from medgan.cohort import build_cohort

TINY = {"n": 24, "seed": 11, "grid": 16, "scans_per_patient": 2, "n_canaries": 2}


@pytest.fixture(scope="session")
def tiny_options() -> dict:
    """Return the build options of the shared tiny cohort."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the folder of the shared tiny cohort (built once per session)."""
    out = tmp_path_factory.mktemp("cohort") / "tiny"
    build_cohort(out, **TINY)
    return out
