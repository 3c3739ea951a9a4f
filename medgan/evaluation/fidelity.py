"""Fidelity metrics: distances between a synthetic set and real scans.

Every metric is computed twice: synthetic against training scans, and holdout against
training scans. The second is the noise floor, the value two independent samples of the
real distribution of these sizes give, so a reader can judge the first.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from medgan.errors import InputError
from medgan.evaluation.stats import bootstrap_interval, estimate, finite_or_none, not_computable

__all__ = [
    "frechet_distance",
    "kernel_inception_distance",
    "rbf_mmd",
    "median_bandwidth",
    "ms_ssim_parameters",
    "ms_ssim_diversity",
    "histogram_distances",
    "anatomy_statistics",
    "anatomy_distances",
    "feature_metrics",
]

logger = logging.getLogger(__name__)


def _check_features(features: np.ndarray, name: str, min_samples: int) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise InputError(f"{name} features must be a (N, D) array, got shape {features.shape}")
    if features.shape[0] < min_samples:
        raise InputError(f"{name}: need >= {min_samples} samples for this distance, got {features.shape[0]}")
    if not np.all(np.isfinite(features)):
        raise InputError(f"{name} features contain NaN or Inf")
    return features


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Return the square root of a symmetric positive semi-definite matrix.

    The matrix is symmetrised and negative eigenvalues (rounding noise of a
    rank-deficient covariance) are clipped to zero, so the result is real and does not
    depend on which general-purpose ``sqrtm`` a SciPy version ships.
    """
    symmetric = (matrix + matrix.T) / 2.0
    eigenvalues, eigenvectors = np.linalg.eigh(symmetric)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    return (eigenvectors * np.sqrt(eigenvalues)) @ eigenvectors.T


def frechet_distance(first: np.ndarray, second: np.ndarray, *, min_samples: int = 2) -> float:
    """Return the Frechet distance between Gaussians fitted to two ``(N, D)`` feature sets.

    ``trace(sqrt(S1 S2))`` never goes through a general matrix square root, which is
    where ``scipy.linalg.sqrtm`` returns complex values when N < D or a set collapsed
    to identical rows. With centred feature matrices A (N, D) and B (M, D), the nonzero
    eigenvalues of ``S1 S2`` are the squared singular values of ``A B^T`` divided by
    ``(N-1)(M-1)``, so the trace is a nuclear norm (used when N M <= D^2). For larger
    sets it is the trace of ``sqrt(sqrt(S1) S2 sqrt(S1))``, a symmetric PSD matrix
    whose square root comes from a clipped eigendecomposition. Both are real.

    Raises:
        InputError: a set has fewer than ``min_samples`` rows or non-finite values.
    """
    first = _check_features(first, "first set", max(min_samples, 2))
    second = _check_features(second, "second set", max(min_samples, 2))
    if first.shape[1] != second.shape[1]:
        raise InputError(f"feature sets differ in dimension: {first.shape[1]} and {second.shape[1]}")
    mean_difference = first.mean(axis=0) - second.mean(axis=0)
    centred_first = first - first.mean(axis=0)  # (N, D)
    centred_second = second - second.mean(axis=0)  # (M, D)
    scale = np.sqrt((len(first) - 1) * (len(second) - 1))
    trace_first = float((centred_first**2).sum()) / (len(first) - 1)
    trace_second = float((centred_second**2).sum()) / (len(second) - 1)
    if len(first) * len(second) <= first.shape[1] ** 2:
        cross_trace = _nuclear_norm(centred_first @ centred_second.T) / scale
    else:
        cov_first = centred_first.T @ centred_first / (len(first) - 1)  # (D, D)
        cov_second = centred_second.T @ centred_second / (len(second) - 1)
        root_first = _sqrt_psd(cov_first)
        cross_trace = float(np.trace(_sqrt_psd(root_first @ cov_second @ root_first)))
    value = mean_difference @ mean_difference + trace_first + trace_second - 2.0 * cross_trace
    return float(max(value, 0.0))


def _nuclear_norm(matrix: np.ndarray) -> float:
    """Return the sum of singular values of ``matrix``."""
    return float(np.linalg.svd(matrix, compute_uv=False).sum())


def _polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _unbiased_mmd2(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m, n = k_xx.shape[0], k_yy.shape[0]
    if m < 2 or n < 2:
        raise ValueError("the unbiased MMD estimate needs at least two samples per set")
    sum_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    sum_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(sum_xx + sum_yy - 2.0 * k_xy.mean())


def kernel_inception_distance(first: np.ndarray, second: np.ndarray, *, min_samples: int = 2) -> float:
    """Return KID: the unbiased squared MMD with the cubic polynomial kernel of Binkowski et al. (2018).

    The estimate is unbiased, so it can be slightly negative when the sets match; it is
    reported as computed.
    """
    first = _check_features(first, "first set", max(min_samples, 2))
    second = _check_features(second, "second set", max(min_samples, 2))
    return _unbiased_mmd2(_polynomial_kernel(first, first), _polynomial_kernel(second, second), _polynomial_kernel(first, second))


def median_bandwidth(features: np.ndarray) -> float:
    """Return the median pairwise Euclidean distance of ``features`` (the median heuristic), at least 1e-6."""
    squared = ((features[:, None, :] - features[None, :, :]) ** 2).sum(-1)
    upper = squared[np.triu_indices(len(features), k=1)]
    if upper.size == 0:
        return 1.0
    return float(max(np.sqrt(np.median(upper)), 1e-6))


def rbf_mmd(first: np.ndarray, second: np.ndarray, *, bandwidth: float, min_samples: int = 2) -> float:
    """Return the unbiased squared MMD with a Gaussian kernel of the given bandwidth."""
    first = _check_features(first, "first set", max(min_samples, 2))
    second = _check_features(second, "second set", max(min_samples, 2))

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
        return np.exp(-np.clip(squared, 0.0, None) / (2.0 * bandwidth**2))

    return _unbiased_mmd2(kernel(first, first), kernel(second, second), kernel(first, second))


def feature_metrics(
    train: np.ndarray,
    holdout: np.ndarray,
    synthetic: np.ndarray,
    *,
    min_samples: int,
    n_bootstrap: int,
    confidence: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Return ``fid``, ``kid`` and ``mmd`` entries, each with its holdout-vs-train noise floor.

    A comparison whose sets are smaller than ``min_samples`` is "not computable" with the
    counts. When a set is smaller than the feature dimension the entry carries a note,
    because the Gaussian fit behind FID is then rank-deficient and biased upwards.
    """
    bandwidth = median_bandwidth(train) if len(train) >= 2 else 1.0
    metrics: dict[str, Any] = {}
    functions = {
        "fid": lambda a, b: frechet_distance(a, b, min_samples=2),
        "kid": lambda a, b: kernel_inception_distance(a, b, min_samples=2),
        "mmd": lambda a, b: rbf_mmd(a, b, bandwidth=bandwidth, min_samples=2),
    }
    dimension = train.shape[1] if train.ndim == 2 else 0
    for name, function in functions.items():
        entry: dict[str, Any] = {}
        for label, query in (("synthetic_vs_train", synthetic), ("holdout_vs_train", holdout)):
            counts = {"query": int(len(query)), "train": int(len(train)), "min_samples": min_samples}
            if len(query) < min_samples or len(train) < min_samples:
                entry[label] = not_computable(f"needs at least {min_samples} scans in each set", counts)
                continue
            value = function(query, train)
            interval = bootstrap_interval(function, query, train, n_bootstrap=n_bootstrap, confidence=confidence, rng=rng)
            extra: dict[str, Any] = {"counts": counts}
            if name == "fid" and min(len(query), len(train)) <= dimension:
                extra["note"] = f"fewer scans than feature dimensions ({dimension}): the covariance is rank-deficient and FID is biased upwards"
            entry[label] = estimate(value, interval, **extra)
        if name == "mmd":
            entry["kernel"] = {"type": "gaussian", "bandwidth": finite_or_none(bandwidth), "bandwidth_rule": "median pairwise distance of training features"}
        metrics[name] = entry
    return metrics


def ms_ssim_parameters(grid: int) -> dict[str, Any]:
    """Return MS-SSIM kernel size, sigma and scale weights that fit a cubic grid.

    MONAI's defaults (11-voxel kernel, 5 scales) need images larger than 160 voxels.
    Here the number of scales is the largest for which the coarsest scale still spans
    at least two kernel widths, and the standard weights of Wang et al. (2003) are cut to
    those scales and renormalised. MONAI's own size check uses ``(scales - 1) ** 2`` as
    the divisor, which the choice also satisfies.
    """
    if grid < 8:
        raise InputError(f"MS-SSIM needs a grid of at least 8 voxels, got {grid}")
    base_weights = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    kernel = 3 if grid < 32 else 5
    scales = 1
    for candidate in range(1, len(base_weights) + 1):
        coarsest = grid // 2 ** (candidate - 1)
        divisor = max(1, candidate - 1) ** 2
        if coarsest >= 2 * kernel and grid // divisor > kernel - 1:
            scales = candidate
    weights = np.asarray(base_weights[:scales])
    weights = weights / weights.sum()
    return {"kernel_size": kernel, "kernel_sigma": 0.75 if kernel == 3 else 1.5, "weights": [float(w) for w in weights]}


def ms_ssim_diversity(
    volumes: np.ndarray, *, pairs: int, rng: np.random.Generator, n_bootstrap: int, confidence: float
) -> dict[str, Any]:
    """Return the mean MS-SSIM over random distinct pairs of ``(N, 1, G, G, G)`` volumes.

    Lower means a more diverse set; a collapsed generator scores near 1. Computed with
    MONAI's ``MultiScaleSSIMMetric`` on a fixed number of random pairs (all pairs when
    there are fewer), with a bootstrap interval over the pairs.
    """
    import torch
    from monai.metrics import MultiScaleSSIMMetric

    count = len(volumes)
    if count < 2:
        return not_computable("MS-SSIM diversity needs at least two scans", {"scans": int(count)})
    grid = volumes.shape[-1]
    parameters = ms_ssim_parameters(grid)
    all_pairs = np.array([(i, j) for i in range(count) for j in range(i + 1, count)])
    if len(all_pairs) > pairs:
        all_pairs = all_pairs[rng.choice(len(all_pairs), size=pairs, replace=False)]
    metric = MultiScaleSSIMMetric(
        spatial_dims=3,
        data_range=2.0,
        kernel_size=parameters["kernel_size"],
        kernel_sigma=parameters["kernel_sigma"],
        weights=parameters["weights"],
        reduction="none",
    )
    values = []
    for start in range(0, len(all_pairs), 16):
        chunk = all_pairs[start : start + 16]
        first = torch.from_numpy(np.ascontiguousarray(volumes[chunk[:, 0]], dtype=np.float32))
        second = torch.from_numpy(np.ascontiguousarray(volumes[chunk[:, 1]], dtype=np.float32))
        values.append(metric(first, second).reshape(-1).double().numpy())
    scores = np.nan_to_num(np.concatenate(values), nan=0.0)
    interval = (None, None)
    if len(scores) >= 2:
        means = [scores[rng.integers(0, len(scores), len(scores))].mean() for _ in range(n_bootstrap)]
        tail = (1 - confidence) / 2 * 100
        interval = tuple(float(v) for v in np.percentile(means, [tail, 100 - tail]))
    return estimate(float(scores.mean()), interval, pairs=int(len(scores)), parameters=parameters)


def _histogram(volumes: np.ndarray, bins: int) -> np.ndarray:
    counts = np.zeros(bins, dtype=np.float64)
    for volume in volumes:
        counts += np.histogram(np.clip(volume, -1, 1), bins=bins, range=(-1.0, 1.0))[0]
    return counts / max(counts.sum(), 1.0)


def histogram_distances(query: np.ndarray, reference: np.ndarray, *, bins: int) -> dict[str, float | None]:
    """Return the Wasserstein-1 and Jensen-Shannon distances between pooled intensity histograms."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    first, second = _histogram(query, bins), _histogram(reference, bins)
    centres = np.linspace(-1, 1, bins + 1)
    centres = (centres[:-1] + centres[1:]) / 2
    return {
        "wasserstein": finite_or_none(wasserstein_distance(centres, centres, first + 1e-12, second + 1e-12)),
        "jensen_shannon": finite_or_none(jensenshannon(first + 1e-12, second + 1e-12, base=2)),
    }


ANATOMY_STATISTICS = ("foreground_fraction", "foreground_mean", "foreground_std", "extent_x", "extent_y", "extent_z")


def anatomy_statistics(volumes: np.ndarray, threshold: float = -0.9) -> np.ndarray:
    """Return ``(N, 6)`` simple per-scan statistics: foreground share, mean, std and extents.

    The foreground is every voxel above ``threshold`` (just above the background value
    -1). Extents are the foreground's bounding-box edge per axis as a share of the grid. A
    scan with no foreground gets zeros, not NaN.
    """
    rows = []
    for volume in volumes:
        data = volume.reshape(volume.shape[-3:])  # (G, G, G)
        mask = data > threshold
        if not mask.any():
            rows.append([0.0] * len(ANATOMY_STATISTICS))
            continue
        values = data[mask]
        extents = []
        for axis in range(3):
            present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
            extents.append((present[-1] - present[0] + 1) / data.shape[axis])
        rows.append([mask.mean(), values.mean(), values.std(), *extents])
    return np.asarray(rows, dtype=np.float64)


def anatomy_distances(query: np.ndarray, reference: np.ndarray) -> dict[str, float | None]:
    """Return the 1-D Wasserstein distance of each anatomical statistic between two sets."""
    from scipy.stats import wasserstein_distance

    first, second = anatomy_statistics(query), anatomy_statistics(reference)
    return {name: finite_or_none(wasserstein_distance(first[:, i], second[:, i])) for i, name in enumerate(ANATOMY_STATISTICS)}
