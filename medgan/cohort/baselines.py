"""Two trivial generators that a trained model must beat before its numbers mean anything.

* :func:`fit_dp_gaussian` fits, per condition, an independent Gaussian per voxel (on a
  coarser grid) from sums released with the analytic Gaussian mechanism, so it has a
  real (epsilon, delta) guarantee with the patient as the unit.
* :func:`blurred_copies` returns randomly chosen training scans, Gaussian-blurred.  It
  has no privacy at all; a memorization check that does not flag it is broken.

Both work on preprocessed ``(1, G, G, G)`` arrays in ``[-1, 1]`` and return plain arrays
with labels, so the benchmark can wrap them as scans and evaluate them with the same
code as a trained generator's samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.stats import norm

from medgan.errors import ConfigError, PrivacyError

__all__ = [
    "analytic_gaussian_sigma",
    "analytic_gaussian_delta",
    "DPGaussianModel",
    "fit_dp_gaussian",
    "blurred_copies",
]


def analytic_gaussian_delta(epsilon: float, sigma: float) -> float:
    """Return the exact delta of the Gaussian mechanism with noise ``sigma`` per unit of L2 sensitivity.

    This is the analytic Gaussian mechanism of Balle and Wang, "Improving the Gaussian Mechanism for
    Differential Privacy" (ICML 2018): ``Phi(1/(2s) - e*s) - exp(e) * Phi(-1/(2s) - e*s)``.
    """
    first = norm.cdf(0.5 / sigma - epsilon * sigma)
    second = math.exp(epsilon) * norm.cdf(-0.5 / sigma - epsilon * sigma)
    return float(max(first - second, 0.0))


def analytic_gaussian_sigma(epsilon: float, delta: float, *, rtol: float = 1e-6) -> float:
    """Return the smallest noise (per unit of L2 sensitivity) giving (``epsilon``, ``delta``)-DP.

    Raises:
        PrivacyError: epsilon is not positive or delta is not in (0, 1).
    """
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise PrivacyError(f"epsilon {epsilon} is invalid; it must be a finite number > 0")
    if not 0.0 < delta < 1.0:
        raise PrivacyError(f"delta {delta} is invalid; it must be in (0, 1)")
    low, high = 1e-3, 1.0
    while analytic_gaussian_delta(epsilon, high) > delta:
        high *= 2.0
    # delta decreases monotonically in sigma, so bisection finds the boundary.
    while (high - low) > rtol * high:
        middle = 0.5 * (low + high)
        if analytic_gaussian_delta(epsilon, middle) > delta:
            low = middle
        else:
            high = middle
    return high


@dataclass(frozen=True)
class DPGaussianModel:
    """Per-condition voxel means and standard deviations on a coarse grid, released with DP.

    Attributes:
        means: condition value -> (g, g, g) mean.
        stds: condition value -> (g, g, g) standard deviation.
        grid: edge of the full grid that samples are upsampled to.
        epsilon: privacy budget spent (None for the non-private fit).
        delta: delta of the guarantee (None for the non-private fit).
        noise_std: standard deviation of the noise added to each released sum.
    """

    means: dict[str, np.ndarray]
    stds: dict[str, np.ndarray]
    grid: int
    epsilon: float | None
    delta: float | None
    noise_std: float

    def sample(self, label: str, count: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``count`` volumes of one condition: (count, 1, G, G, G) in [-1, 1]."""
        if label not in self.means:
            raise ConfigError(f"condition {label!r} is not one of the fitted {sorted(self.means)}")
        mean, std = self.means[label], self.stds[label]
        coarse = mean[None] + std[None] * rng.standard_normal((count, *mean.shape))  # (count, g, g, g)
        factor = self.grid / mean.shape[0]
        full = np.stack([ndimage.zoom(volume, factor, order=1, mode="nearest", grid_mode=True) for volume in coarse])
        return np.clip(full, -1.0, 1.0)[:, None].astype(np.float32)  # (count, 1, G, G, G)


def _pool(volume: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``-cubes of a (G, G, G) volume."""
    size = volume.shape[0] // factor
    # (G, G, G) -> (g, f, g, f, g, f) -> mean over the block axes.
    return volume[: size * factor, : size * factor, : size * factor].reshape(size, factor, size, factor, size, factor).mean(axis=(1, 3, 5))


def fit_dp_gaussian(
    patients: Sequence[np.ndarray],
    labels: Sequence[str],
    *,
    epsilon: float | None,
    delta: float | None,
    rng: np.random.Generator,
    pool: int = 2,
    min_std: float = 0.02,
) -> DPGaussianModel:
    """Fit a per-voxel Gaussian per condition, with the patient as the unit of privacy.

    Each patient contributes one vector ``[x, x**2, 1]`` (its pooled volume, the squares
    and a count) to the sums of its condition.  Voxels lie in [-1, 1], so the vector's L2
    norm is at most ``sqrt(2 d + 1)`` for ``d`` pooled voxels, and adding or removing a
    patient changes one condition's sums by at most that much.  One Gaussian release of
    all sums with noise ``sigma * sqrt(2 d + 1)`` is then (epsilon, delta)-DP by the
    analytic Gaussian mechanism; means and variances are post-processing.

    Args:
        patients: one (1, G, G, G) or (G, G, G) array per patient in [-1, 1]; average a
            patient's scans first, so the patient is the unit.
        labels: condition value of each patient.
        epsilon: budget; None fits without noise (the non-private reference).
        delta: delta of the guarantee; required when ``epsilon`` is set.
        rng: generator of the DP noise.
        pool: block size of the coarse grid; larger blocks mean fewer sums and less noise.
        min_std: floor of the released standard deviation, because noise can make a
            variance estimate negative.

    Raises:
        ConfigError: no patients, lengths differ, or values lie outside [-1, 1].
        PrivacyError: ``epsilon`` is set without a valid ``delta``.
    """
    if len(patients) == 0 or len(patients) != len(labels):
        raise ConfigError(f"fit_dp_gaussian needs one label per patient, got {len(patients)} volumes and {len(labels)} labels")
    volumes = [np.asarray(volume, dtype=np.float64).reshape(np.shape(volume)[-3:]) for volume in patients]
    grid = volumes[0].shape[0]
    if any(volume.shape != (grid, grid, grid) for volume in volumes):
        raise ConfigError("fit_dp_gaussian needs cubic volumes of one grid")
    if grid % pool != 0:
        raise ConfigError(f"pool {pool} does not divide grid {grid}")
    if min(float(volume.min()) for volume in volumes) < -1.0 - 1e-6 or max(float(volume.max()) for volume in volumes) > 1.0 + 1e-6:
        raise ConfigError("fit_dp_gaussian needs volumes in [-1, 1]; the sensitivity bound relies on it")
    if epsilon is not None and delta is None:
        raise PrivacyError("fit_dp_gaussian got epsilon without delta; pass the delta of the guarantee")

    pooled = [_pool(volume, pool) for volume in volumes]
    dimension = pooled[0].size
    sensitivity = math.sqrt(2 * dimension + 1)
    noise_std = 0.0 if epsilon is None else analytic_gaussian_sigma(epsilon, float(delta)) * sensitivity
    means: dict[str, np.ndarray] = {}
    stds: dict[str, np.ndarray] = {}
    for value in sorted(set(labels)):
        members = [volume for volume, label in zip(pooled, labels) if label == value]
        first = np.sum(members, axis=0)
        second = np.sum([volume * volume for volume in members], axis=0)
        count = float(len(members))
        if noise_std > 0:
            first = first + rng.normal(0.0, noise_std, size=first.shape)
            second = second + rng.normal(0.0, noise_std, size=second.shape)
            count = count + float(rng.normal(0.0, noise_std))
        count = max(count, 1.0)
        mean = np.clip(first / count, -1.0, 1.0)
        variance = np.maximum(second / count - mean * mean, min_std**2)
        means[value] = mean
        stds[value] = np.sqrt(variance)
    return DPGaussianModel(means=means, stds=stds, grid=grid, epsilon=epsilon, delta=delta, noise_std=noise_std)


def blurred_copies(
    volumes: np.ndarray,
    labels: Sequence[str],
    per_condition: int,
    *,
    sigma_voxels: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[str]]:
    """Return ``per_condition`` randomly chosen training volumes per condition, blurred.

    Args:
        volumes: (N, 1, G, G, G) training volumes.
        labels: condition of each volume.
        per_condition: volumes to return per condition (drawn with replacement when
            a condition has fewer).
        sigma_voxels: Gaussian blur in voxels.
        rng: generator of the choice.

    Returns:
        (M, 1, G, G, G) blurred volumes and their labels.
    """
    if len(volumes) != len(labels):
        raise ConfigError(f"blurred_copies got {len(volumes)} volumes and {len(labels)} labels")
    chosen_volumes, chosen_labels = [], []
    for value in sorted(set(labels)):
        indices = np.flatnonzero(np.asarray(labels) == value)
        picks = rng.choice(indices, size=per_condition, replace=len(indices) < per_condition)
        for index in picks.tolist():
            blurred = ndimage.gaussian_filter(np.asarray(volumes[index][0], dtype=np.float32), sigma_voxels, mode="nearest")
            chosen_volumes.append(blurred[None])
            chosen_labels.append(value)
    return np.stack(chosen_volumes).astype(np.float32), chosen_labels
