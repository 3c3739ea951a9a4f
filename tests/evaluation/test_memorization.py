"""Copy search: planted copies are flagged, unrelated scans are not."""

from __future__ import annotations

import numpy as np
import pytest
from .phantoms import make_phantoms
from scipy import ndimage

from medgan.errors import InputError
from medgan.evaluation.memorization import SearchSettings, calibrate_threshold, data_copying_test, nearest_references

GRID = 32


def _shifted(volume: np.ndarray) -> np.ndarray:
    return ndimage.shift(volume[0], (2, -2, 1), order=0, cval=-1.0)[None]


def _resampled(volume: np.ndarray) -> np.ndarray:
    small = ndimage.zoom(volume[0], 0.8, order=1)
    return ndimage.zoom(small, GRID / small.shape[0], order=1)[None]


def _deformed(volume: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    grid = np.meshgrid(*[np.arange(GRID)] * 3, indexing="ij")
    displacement = [ndimage.gaussian_filter(rng.standard_normal((GRID,) * 3), GRID / 6) * GRID * 0.3 for _ in range(3)]
    return ndimage.map_coordinates(volume[0], [g + d for g, d in zip(grid, displacement)], order=1, cval=-1.0)[None]


COPIES = {
    "exact": lambda v, rng: v,
    "shifted": lambda v, rng: _shifted(v),
    "flipped": lambda v, rng: v[:, ::-1],
    "noised": lambda v, rng: np.clip(v + rng.normal(0, 0.1, v.shape), -1, 1),
    "rescaled": lambda v, rng: v * 0.6 + 0.1,
    "resampled": lambda v, rng: _resampled(v),
    "deformed": _deformed,
}


def _search(homogeneous: bool):
    volumes = make_phantoms(40, GRID, 1, homogeneous=homogeneous)
    train, holdout = volumes[:20], volumes[20:]
    rng = np.random.default_rng(0)
    copies = np.stack([make(train[i], rng) for i, make in enumerate(COPIES.values())])
    unrelated = make_phantoms(10, GRID, 99, homogeneous=homogeneous)
    synthetic = np.concatenate([copies, unrelated]).astype(np.float32)
    threshold = calibrate_threshold(nearest_references(holdout, train).distance, quantile=0.05, ratio=0.5)
    match = nearest_references(synthetic, train)
    return match, threshold


@pytest.fixture(scope="module", params=[False, True], ids=["mixed", "homogeneous"])
def search(request):
    return _search(request.param)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(COPIES))
def test_copy_flagged(search, kind):
    match, threshold = search
    row = list(COPIES).index(kind)
    assert match.distance[row] < threshold["distance_threshold"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(COPIES))
def test_copy_nearest_is_source(search, kind):
    match, _ = search
    row = list(COPIES).index(kind)
    assert match.index[row] == row


@pytest.mark.slow
def test_unrelated_not_flagged(search):
    match, threshold = search
    assert np.all(match.distance[len(COPIES) :] >= threshold["distance_threshold"])


@pytest.mark.slow
def test_flipped_copy_reports_flip(search):
    match, _ = search
    assert match.flipped[list(COPIES).index("flipped")]


def test_shifted_copy_reports_shift():
    volumes = make_phantoms(3, GRID, 4)
    shifted = np.roll(volumes[:1], (2, -1, 3), axis=(2, 3, 4))
    match = nearest_references(shifted, volumes)
    assert sorted(np.abs(match.shift[0]).tolist()) == [1, 2, 3]


def test_constant_volumes_finite():
    constant = np.full((3, 1, 16, 16, 16), -1.0, dtype=np.float32)
    match = nearest_references(constant, make_phantoms(4, 16, 0))
    assert np.all(np.isfinite(match.similarity))


def test_search_grid_mismatch_raises():
    with pytest.raises(InputError, match="share one grid"):
        nearest_references(make_phantoms(1, 16, 0), make_phantoms(1, 8, 0))


def test_search_empty_references_raises():
    with pytest.raises(InputError, match="at least one reference"):
        nearest_references(make_phantoms(1, 16, 0), np.zeros((0, 1, 16, 16, 16), dtype=np.float32))


def test_search_chunking_same_result():
    volumes = make_phantoms(9, 16, 2)
    whole = nearest_references(volumes[:5], volumes[5:], SearchSettings(chunk_size=64))
    chunked = nearest_references(volumes[:5], volumes[5:], SearchSettings(chunk_size=2))
    assert np.allclose(whole.similarity, chunked.similarity, atol=1e-5)


def test_threshold_rule_value():
    threshold = calibrate_threshold(np.array([0.02, 0.04, 0.06]), quantile=0.5, ratio=0.5)
    assert threshold["distance_threshold"] == pytest.approx(0.02)


def test_threshold_without_holdout_raises():
    with pytest.raises(InputError, match="at least one holdout"):
        calibrate_threshold(np.array([]), quantile=0.05, ratio=0.5)


def test_data_copying_detects_copies():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 4))
    holdout_distances = rng.uniform(0.01, 0.02, 40)
    copied_distances = rng.uniform(0.0, 0.002, 40)
    result = data_copying_test(features, features[:40], features[:40], holdout_distances, copied_distances, rng=rng)
    assert result["copying"] is True


def test_data_copying_matching_distances_not_copying():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(60, 4))
    result = data_copying_test(features, features[:40], features[20:60], rng.uniform(0.01, 0.02, 40), rng.uniform(0.01, 0.02, 40), rng=rng)
    assert result["copying"] is False


def test_data_copying_small_sets_not_computable():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(8, 4))
    result = data_copying_test(features, features[:3], features[:3], np.ones(3), np.ones(3), rng=rng)
    assert result["status"] == "not computable"


@pytest.fixture(scope="module")
def simulated_cohort_search():
    """Planted copies among patients of medgan's simulated ICBM152 cohort (all scans look alike)."""
    from medgan.cohort import CohortSpec, load_template, plan_cohort, render_patient

    spec = CohortSpec(n_patients=40, seed=3, grid=GRID, write_masks=False)
    template = load_template(GRID)
    volumes = np.stack([render_patient(plan, template, spec)[0].volume for plan in plan_cohort(spec, template)])
    volumes = (np.clip(volumes / np.percentile(volumes, 99.5), 0, 1) * 2 - 1)[:, None].astype(np.float32)  # (N, 1, G, G, G)
    train, calibration, unrelated = volumes[:20], volumes[20:30], volumes[30:]
    rng = np.random.default_rng(0)
    copies = np.stack([make(train[i], rng) for i, make in enumerate(COPIES.values())])
    threshold = calibrate_threshold(nearest_references(calibration, train).distance, quantile=0.05, ratio=0.5)
    match = nearest_references(np.concatenate([copies, unrelated]).astype(np.float32), train)
    return match, threshold


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(COPIES))
def test_simulated_cohort_copy_flagged(simulated_cohort_search, kind):
    match, threshold = simulated_cohort_search
    assert match.distance[list(COPIES).index(kind)] < threshold["distance_threshold"]


@pytest.mark.slow
def test_simulated_cohort_unrelated_not_flagged(simulated_cohort_search):
    match, threshold = simulated_cohort_search
    assert np.all(match.distance[len(COPIES) :] >= threshold["distance_threshold"])


def test_data_copying_identical_train_features_finite():
    rng = np.random.default_rng(3)
    features = np.ones((60, 4))  # a collapsed feature set: one distinct point
    result = data_copying_test(features, features[:30], features[:30], rng.uniform(0, 1, 30), rng.uniform(0, 1, 30), rng=rng)
    assert np.isfinite(result["value"])
