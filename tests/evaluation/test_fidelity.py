"""Fidelity metrics: FID/KID/MMD robustness, monotonicity, MS-SSIM parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from .phantoms import make_phantoms

from medgan.errors import InputError
from medgan.evaluation.encoder import load_extractor
from medgan.evaluation.fidelity import (
    anatomy_statistics,
    frechet_distance,
    histogram_distances,
    kernel_inception_distance,
    ms_ssim_diversity,
    ms_ssim_parameters,
    rbf_mmd,
)


def test_fid_identical_sets_zero():
    features = np.random.default_rng(0).normal(size=(50, 8))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_fid_identical_sets_zero_fewer_samples_than_dims():
    features = np.random.default_rng(0).normal(size=(10, 128))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_monai_scipy_sqrtm():
    from monai.metrics import FIDMetric

    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(200, 6)), rng.normal(size=(150, 6)) * 1.3 + 0.2
    expected = float(FIDMetric()(torch.from_numpy(first), torch.from_numpy(second)))
    assert frechet_distance(first, second) == pytest.approx(expected, rel=1e-6)


def test_fid_nuclear_norm_path_matches_eigen_path():
    rng = np.random.default_rng(2)
    first, second = rng.normal(size=(6, 40)), rng.normal(size=(7, 40)) + 0.1
    # N M <= D^2 here, so frechet_distance takes the nuclear-norm path; the oracle is the covariance formula
    # with eigendecomposition square roots, whose clipped rounding noise limits agreement to about 1e-7.
    from medgan.evaluation.fidelity import _sqrt_psd

    cov_first, cov_second = np.cov(first, rowvar=False), np.cov(second, rowvar=False)
    root = _sqrt_psd(cov_first)
    difference = first.mean(0) - second.mean(0)
    expected = difference @ difference + np.trace(cov_first) + np.trace(cov_second) - 2 * np.trace(_sqrt_psd(root @ cov_second @ root))
    assert frechet_distance(first, second) == pytest.approx(expected, rel=1e-6)


def test_fid_collapsed_set_finite_and_large():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(10, 128))
    collapsed = np.repeat(real[:1], 10, axis=0)
    value = frechet_distance(collapsed, real)
    assert np.isfinite(value)
    assert value > frechet_distance(real[:5], real[5:]) * 0.5


def test_fid_duplicated_samples_finite():
    real = np.random.default_rng(6).normal(size=(10, 128))
    tripled = np.concatenate([real, real, real])  # copies add no rank to the covariance
    assert frechet_distance(tripled, real) < 0.1 * frechet_distance(real[:5], real[5:])


def test_fid_too_few_samples_raises():
    with pytest.raises(InputError, match="need >= 5 samples"):
        frechet_distance(np.zeros((3, 4)), np.ones((9, 4)), min_samples=5)


def test_fid_nan_features_raises():
    features = np.ones((6, 4))
    features[2, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        frechet_distance(features, np.ones((6, 4)))


def test_kid_identical_distribution_near_zero():
    rng = np.random.default_rng(4)
    assert abs(kernel_inception_distance(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)))) < 0.02


def test_mmd_shifted_distribution_positive():
    rng = np.random.default_rng(5)
    first, second = rng.normal(size=(60, 4)), rng.normal(size=(60, 4)) + 2.0
    assert rbf_mmd(first, second, bandwidth=2.0) > 0.3


@pytest.mark.slow
def test_fid_kid_rise_with_noise():
    extractor = load_extractor()
    real = extractor(make_phantoms(40, 16, 0))
    other = make_phantoms(40, 16, 1)
    rng = np.random.default_rng(0)
    fids, kids = [], []
    for sigma in (0.0, 0.1, 0.2, 0.4):
        noisy = np.clip(other + rng.normal(0, sigma, other.shape), -1, 1).astype(np.float32)
        features = extractor(noisy)
        fids.append(frechet_distance(features, real))
        kids.append(kernel_inception_distance(features, real))
    assert np.all(np.diff(fids) > 0), fids
    assert np.all(np.diff(kids) > 0), kids


@pytest.mark.parametrize("grid", [16, 32, 64, 128])
def test_ms_ssim_parameters_accepted_by_monai(grid):
    from monai.metrics.regression import compute_ms_ssim

    parameters = ms_ssim_parameters(grid)
    volume = torch.zeros(1, 1, grid, grid, grid)
    value = compute_ms_ssim(
        volume, volume, spatial_dims=3, data_range=2.0, kernel_size=parameters["kernel_size"],
        kernel_sigma=parameters["kernel_sigma"], weights=parameters["weights"],
    )
    assert float(value) == pytest.approx(1.0, abs=1e-5)


def test_ms_ssim_diversity_constant_volumes_finite():
    constant = np.full((4, 1, 16, 16, 16), 0.3, dtype=np.float32)
    entry = ms_ssim_diversity(constant, pairs=6, rng=np.random.default_rng(0), n_bootstrap=20, confidence=0.95)
    assert np.isfinite(entry["value"])


def test_ms_ssim_diversity_identical_scans_one():
    volumes = np.repeat(make_phantoms(1, 16, 0), 3, axis=0)
    entry = ms_ssim_diversity(volumes, pairs=3, rng=np.random.default_rng(0), n_bootstrap=20, confidence=0.95)
    assert entry["value"] == pytest.approx(1.0, abs=1e-4)


def test_ms_ssim_diversity_single_scan_not_computable():
    entry = ms_ssim_diversity(make_phantoms(1, 16, 0), pairs=3, rng=np.random.default_rng(0), n_bootstrap=20, confidence=0.95)
    assert entry["status"] == "not computable"


def test_histogram_distance_identical_zero():
    volumes = make_phantoms(2, 16, 0)
    assert histogram_distances(volumes, volumes, bins=32)["wasserstein"] == pytest.approx(0.0, abs=1e-9)


def test_anatomy_statistics_blank_volume_zeros():
    blank = np.full((1, 1, 8, 8, 8), -1.0, dtype=np.float32)
    assert anatomy_statistics(blank).tolist() == [[0.0] * 6]


def test_anatomy_statistics_cube_extent():
    volume = np.full((1, 1, 8, 8, 8), -1.0, dtype=np.float32)
    volume[0, 0, 2:6, 2:6, 2:6] = 0.5
    assert anatomy_statistics(volume)[0].tolist() == pytest.approx([64 / 512, 0.5, 0.0, 0.5, 0.5, 0.5])
