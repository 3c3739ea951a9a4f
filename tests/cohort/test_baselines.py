"""Trivial baselines: the analytic Gaussian mechanism, the DP voxel Gaussian and blurred copies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent
from scipy import ndimage

from medgan.cohort.baselines import analytic_gaussian_delta, analytic_gaussian_sigma, blurred_copies, fit_dp_gaussian
from medgan.errors import ConfigError, PrivacyError

ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 256))


def _patients(count: int, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    volumes = [np.clip(rng.normal(0.2 if index % 2 else -0.3, 0.1, size=(1, 8, 8, 8)), -1, 1) for index in range(count)]
    labels = ["present" if index % 2 else "absent" for index in range(count)]
    return volumes, labels


def test_sigma_golden_value() -> None:
    # Balle and Wang (2018) report sigma ~ 3.73 for epsilon 1, delta 1e-5.
    assert analytic_gaussian_sigma(1.0, 1e-5) == pytest.approx(3.7306, abs=1e-3)


def test_sigma_meets_delta_tightly() -> None:
    sigma = analytic_gaussian_sigma(4.0, 1e-6)
    assert analytic_gaussian_delta(4.0, sigma) <= 1e-6
    assert analytic_gaussian_delta(4.0, 0.99 * sigma) > 1e-6


@pytest.mark.parametrize("epsilon", [1.0, 4.0, 8.0], ids=["eps1", "eps4", "eps8"])
def test_sigma_within_rdp_bound(epsilon: float) -> None:
    """RDP is a looser bound of the same mechanism: at the analytic sigma it reports a larger epsilon."""
    sigma = analytic_gaussian_sigma(epsilon, 1e-5)
    rdp_epsilon, _ = get_privacy_spent(orders=ORDERS, rdp=compute_rdp(q=1.0, noise_multiplier=sigma, steps=1, orders=ORDERS), delta=1e-5)
    assert epsilon <= rdp_epsilon < 1.2 * epsilon


@pytest.mark.parametrize(("epsilon", "delta"), [(0.0, 1e-5), (math.inf, 1e-5), (1.0, 0.0), (1.0, 1.0)], ids=["zero", "inf", "delta0", "delta1"])
def test_sigma_rejects(epsilon: float, delta: float) -> None:
    with pytest.raises(PrivacyError):
        analytic_gaussian_sigma(epsilon, delta)


def test_gaussian_nonprivate_exact_means() -> None:
    volumes, labels = _patients(10)
    model = fit_dp_gaussian(volumes, labels, epsilon=None, delta=None, rng=np.random.default_rng(0), pool=2)
    present = np.mean([volume[0].reshape(4, 2, 4, 2, 4, 2).mean(axis=(1, 3, 5)) for volume, label in zip(volumes, labels) if label == "present"], axis=0)
    assert model.noise_std == 0.0
    assert np.allclose(model.means["present"], present)


def test_gaussian_noise_scaled_to_sensitivity() -> None:
    volumes, labels = _patients(10)
    model = fit_dp_gaussian(volumes, labels, epsilon=2.0, delta=1e-5, rng=np.random.default_rng(0), pool=2)
    # 4^3 pooled voxels: the vector [x, x^2, 1] has L2 norm at most sqrt(2 * 64 + 1).
    assert model.noise_std == pytest.approx(analytic_gaussian_sigma(2.0, 1e-5) * math.sqrt(129))


def test_gaussian_sample_shape_and_range() -> None:
    volumes, labels = _patients(10)
    model = fit_dp_gaussian(volumes, labels, epsilon=1.0, delta=1e-5, rng=np.random.default_rng(0))
    samples = model.sample("absent", 3, np.random.default_rng(1))
    assert samples.shape == (3, 1, 8, 8, 8)
    assert samples.min() >= -1.0
    assert samples.max() <= 1.0


def test_gaussian_rejects_out_of_range() -> None:
    volumes, labels = _patients(4)
    volumes[0] = volumes[0] * 3.0
    with pytest.raises(ConfigError, match=r"\[-1, 1\]"):
        fit_dp_gaussian(volumes, labels, epsilon=1.0, delta=1e-5, rng=np.random.default_rng(0))


def test_gaussian_rejects_missing_delta() -> None:
    volumes, labels = _patients(4)
    with pytest.raises(PrivacyError, match="delta"):
        fit_dp_gaussian(volumes, labels, epsilon=1.0, delta=None, rng=np.random.default_rng(0))


def test_blurred_copies_are_blurred_training_scans() -> None:
    volumes, labels = _patients(6)
    stacked = np.stack(volumes).astype(np.float32)
    copies, copy_labels = blurred_copies(stacked, labels, 4, sigma_voxels=1.0, rng=np.random.default_rng(0))
    blurred = np.stack([ndimage.gaussian_filter(volume[0], 1.0, mode="nearest") for volume in stacked])
    assert copies.shape == (8, 1, 8, 8, 8)
    assert copy_labels == ["absent"] * 4 + ["present"] * 4
    for copy, label in zip(copies, copy_labels):
        matches = [index for index in range(6) if labels[index] == label and np.allclose(copy[0], blurred[index], atol=1e-6)]
        assert matches, label
