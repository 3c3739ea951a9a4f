"""Canary pattern and detector: planted canaries are found, canary-free scans are not."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from medgan.cohort import canary_threshold, detect_canary, read_cohort_info
from medgan.cohort.canaries import canary_kernel, canary_positions, plant_canary
from medgan.errors import ConfigError


def _scores(cohort: Path) -> tuple[list[float], list[float], dict]:
    """Return the detector scores of canary scans and of canary-free scans, and the cohort info."""
    info = read_cohort_info(cohort)
    positive, negative = [], []
    for patient in info["patients"]:
        for scan in patient["scans"]:
            volume = np.asarray(nib.load(str(cohort / scan["path"])).dataobj)
            score = detect_canary(volume, info["spacing_mm"])
            (positive if patient["canary"] else negative).append(score)
    return positive, negative, info


def _canary_free_volume(cohort: Path, info: dict) -> np.ndarray:
    patient = next(patient for patient in info["patients"] if not patient["canary"] and patient["split"] == "holdout")
    return np.asarray(nib.load(str(cohort / patient["scans"][0]["path"])).dataobj, dtype=np.float32)


def test_kernel_cells_on_voxel_edges() -> None:
    kernel = canary_kernel(12.0)
    assert kernel.shape == (6, 6, 6)
    assert set(np.unique(kernel).tolist()) == {0.0, 1.0}
    assert kernel[0, 0, 0] == 1.0
    assert kernel[2, 0, 0] == 0.0
    assert kernel[2, 2, 0] == 1.0
    # 14 of the 27 cells are bright, each 2 x 2 x 2 voxels.
    assert kernel.sum() == 14 * 8


def test_kernel_averaged_between_edges() -> None:
    kernel = canary_kernel(7.0)
    assert kernel.shape == (10, 10, 10)
    assert 0.0 < kernel[3, 0, 0] < 1.0


def test_kernel_rejects_coarse_spacing() -> None:
    with pytest.raises(ConfigError, match="at least 3"):
        canary_kernel(30.0)


def test_detector_finds_planted_canaries(tiny_cohort: Path) -> None:
    positive, negative, _ = _scores(tiny_cohort)
    assert len(positive) == 4
    assert min(positive) > canary_threshold(negative)


def test_detector_ignores_lesions_and_anatomy(tiny_cohort: Path) -> None:
    _, negative, _ = _scores(tiny_cohort)
    assert len(negative) == 44
    assert max(negative) < 0.5


def test_detector_on_new_anatomy(tiny_cohort: Path) -> None:
    positive, negative, info = _scores(tiny_cohort)
    volume = _canary_free_volume(tiny_cohort, info)
    kernel = canary_kernel(info["spacing_mm"])
    corner = canary_positions(volume > 200.0, kernel.shape[0])[0]
    planted = plant_canary(volume, corner, kernel, 1000.0)
    # A generator's output: the canary one voxel away from where any patient had it,
    # rescaled to the model's [-1, 1].
    shifted = ndimage.shift(planted, (1.0, 0.0, 0.0), order=1)
    model_range = shifted / shifted.max() * 2.0 - 1.0
    assert detect_canary(volume, info["spacing_mm"]) < canary_threshold(negative)
    assert detect_canary(model_range, info["spacing_mm"]) > canary_threshold(negative)


def test_detector_flat_volume_scores_zero() -> None:
    assert detect_canary(np.full((16, 16, 16), 3.0), 12.0) == 0.0


def test_detector_pure_pattern_scores_one() -> None:
    volume = np.zeros((16, 16, 16), dtype=np.float32)
    volume = plant_canary(volume, (4, 5, 6), canary_kernel(12.0), 1.0)
    assert detect_canary(volume, 12.0) == pytest.approx(1.0, abs=1e-9)


def test_detector_plain_cube_scores_low() -> None:
    """The cube's shape without its texture is not the canary."""
    volume = plant_canary(np.zeros((16, 16, 16), dtype=np.float32), (4, 5, 6), np.ones((6, 6, 6), dtype=np.float32), 1.0)
    assert detect_canary(volume, 12.0) < 0.5


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (np.zeros((16, 16)), "expects an"),
        (np.full((16, 16, 16), np.nan), "NaN"),
        (np.zeros((4, 16, 16)), "smaller than"),
    ],
    ids=["2d", "nan", "small"],
)
def test_detector_rejects(volume: np.ndarray, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        detect_canary(volume, 12.0)


def test_threshold_needs_negatives() -> None:
    with pytest.raises(ConfigError, match="canary-free"):
        canary_threshold([])


def test_threshold_above_negatives() -> None:
    assert canary_threshold([0.1, 0.7, 0.2], margin=0.05) == pytest.approx(0.75)


def test_threshold_floor() -> None:
    assert canary_threshold([0.1, 0.3, 0.2], margin=0.05) == pytest.approx(0.6)


def test_detector_noise_below_floor() -> None:
    rng = np.random.default_rng(0)
    scores = [detect_canary(ndimage.zoom(rng.normal(size=(8, 8, 8)), 2, order=1, grid_mode=True, mode="nearest"), 12.0) for _ in range(50)]
    assert max(scores) < canary_threshold([0.0])
