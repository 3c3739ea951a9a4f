"""Copy search: planted copies are flagged, unrelated scans are not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from .conftest import as_scans
from .phantoms import make_phantoms

from medgan.errors import ConfigError, InputError
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


# Blurred training scans in the homogeneous simulated cohort, prepared the way
# evaluate_sets receives them: (1, G, G, G) arrays in [-1, 1] from the real
# preprocessing. At 16^3 with 120 training patients the search without matched blur
# flagged 3 of 20 sigma-1 copies; at 32^3 it missed every sigma-2 copy. Without
# smoothing before retrieval, a copy blurred and shifted by one voxel at 16^3 was
# often not even among the candidates.
BLURRED_COHORTS = {16: {"patients": 150, "sigmas": (1.0,)}, 32: {"patients": 60, "sigmas": (1.0, 2.0)}}
AVERAGE_SIGMAS = (1.0, 2.0)


def _blurred(volumes: np.ndarray, sigmas) -> np.ndarray:
    """Blur each ``(1, G, G, G)`` volume by its sigma (one sigma for all when a number)."""
    sigmas = np.broadcast_to(np.asarray(sigmas, dtype=float), (len(volumes),))
    return np.stack([ndimage.gaussian_filter(v[0], s, mode="nearest")[None] for v, s in zip(volumes, sigmas)]).astype(np.float32)


def _prepared_cohort(folder, grid: int, patients: int):
    from medgan.cohort import build_cohort
    from medgan.data.config import DataConfig, PreprocessConfig
    from medgan.data.dataset import prepare_cohort
    from medgan.data.manifest import load_manifest
    from medgan.data.pseudonym import Pseudonymizer

    manifest = build_cohort(folder / "cohort", patients, 5, grid, holdout_fraction=0.2, write_masks=False)
    cohort = load_manifest(manifest, Pseudonymizer(b"k" * 32), holdout_fraction=0.2)
    profile = PreprocessConfig(grid=grid, spacing_mm=192.0 / grid)
    prepared = prepare_cohort(cohort, DataConfig(manifest=manifest), profile, folder / "cache", progress=False)
    return prepared.split("train"), prepared.split("holdout")


@pytest.fixture(scope="module", params=sorted(BLURRED_COHORTS), ids=lambda grid: f"grid{grid}")
def blurred_cohort(request, tmp_path_factory):
    """evaluate_sets on blurred training scans, smoothed cohort averages and unseen patients."""
    from medgan.cohort.baselines import blurred_copies
    from medgan.evaluation import evaluate_sets
    from medgan.evaluation.config import EvaluationConfig

    grid, options = request.param, BLURRED_COHORTS[request.param]
    train, holdout = _prepared_cohort(tmp_path_factory.mktemp(f"cohort{grid}"), grid, options["patients"])
    half = len(holdout) // 2
    calibration, unseen = holdout[:half], holdout[half:]
    stacked = np.stack([scan.array for scan in train])  # (N, 1, G, G, G)
    labels = [scan.labels.get("lesion", "") for scan in train]
    parts, kinds = [], []
    for sigma in options["sigmas"]:
        copies, _ = blurred_copies(stacked, labels, 5, sigma_voxels=sigma, rng=np.random.default_rng(8))
        parts.append(copies)
        kinds += [f"blur{sigma:g}"] * len(copies)
    shifted = np.stack([ndimage.shift(copy[0], (1, -1, 0), order=0, cval=-1.0)[None] for copy in parts[0]])
    parts.append(shifted)
    kinds += ["blur1-shifted"] * len(shifted)
    parts.append(np.stack([scan.array for scan in unseen]))
    kinds += ["unseen"] * len(unseen)
    synthetic = as_scans(np.concatenate(parts).astype(np.float32), "synthetic")
    config = EvaluationConfig(n_bootstrap=10, utility_epochs=1, ms_ssim_pairs=4)
    sections = evaluate_sets(train, calibration, synthetic, config, progress=False)
    flagged = {entry["synthetic"] for entry in sections["memorization"]["flagged"]}
    flags = {kind: [scan.scan_id in flagged for scan, made in zip(synthetic, kinds) if made == kind] for kind in set(kinds)}
    averages = _blurred(np.repeat(stacked.mean(axis=0, keepdims=True), len(AVERAGE_SIGMAS), axis=0), AVERAGE_SIGMAS)
    with_blur = nearest_references(averages, stacked).distance
    without_blur = nearest_references(averages, stacked, SearchSettings(blur_fractions=())).distance
    return flags, options, (with_blur, without_blur)


@pytest.mark.slow
def test_cohort_blur1_copies_flagged(blurred_cohort):
    flags, _, _ = blurred_cohort
    assert all(flags["blur1"])


@pytest.mark.slow
def test_cohort_every_blur_flagged(blurred_cohort):
    flags, options, _ = blurred_cohort
    assert [all(flags[f"blur{sigma:g}"]) for sigma in options["sigmas"]] == [True] * len(options["sigmas"])


@pytest.mark.slow
def test_cohort_blurred_shifted_flagged(blurred_cohort):
    """Blur and shift together: retrieval must still propose the source scan."""
    flags, _, _ = blurred_cohort
    assert all(flags["blur1-shifted"])


@pytest.mark.slow
def test_cohort_unseen_not_flagged(blurred_cohort):
    flags, _, _ = blurred_cohort
    assert not any(flags["unseen"])


@pytest.mark.slow
def test_cohort_average_distance_unchanged(blurred_cohort):
    """Blurring every candidate pulls a smooth cohort average towards all of them, so the specificity test rejects it."""
    _, _, (with_blur, without_blur) = blurred_cohort
    assert np.allclose(with_blur, without_blur, atol=1e-6)




def test_blurred_copy_reports_blur():
    volumes = make_phantoms(6, 16, 5, homogeneous=True)
    match = nearest_references(_blurred(volumes[:2], 1.0), volumes)
    assert match.blur.tolist() == [1.0, 1.0]


def test_blurred_copy_scores_like_exact():
    volumes = make_phantoms(6, 16, 5, homogeneous=True)
    match = nearest_references(_blurred(volumes[:2], 1.0), volumes)
    assert np.all(match.similarity > 0.9995)


def test_blurred_copy_unmatched_scores_lower():
    volumes = make_phantoms(6, 16, 5, homogeneous=True)
    match = nearest_references(_blurred(volumes[:2], 1.0), volumes, SearchSettings(blur_fractions=()))
    assert np.all(match.similarity < 0.9995)


def test_blur_needs_one_specific_reference():
    volumes = make_phantoms(3, 16, 5, homogeneous=True)
    twins = np.concatenate([volumes[:1], volumes[:1], volumes[1:]])  # two identical references
    match = nearest_references(_blurred(volumes[:1], 1.0), twins)
    assert match.blur[0] == 0.0


def test_single_reference_search_without_blur():
    volumes = make_phantoms(2, 16, 5, homogeneous=True)
    match = nearest_references(_blurred(volumes[:1], 1.0), volumes[:1])
    assert match.blur[0] == 0.0


def test_blur_one_candidate_raises():
    with pytest.raises(ConfigError, match="blur_candidates 1 is invalid"):
        SearchSettings(blur_candidates=1)
