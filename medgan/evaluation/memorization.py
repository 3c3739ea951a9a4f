"""Find the nearest real scan of every query scan, robust to the ways a copy hides.

A synthetic scan that copies a training scan may be shifted by a few voxels, flipped
left-right, slightly deformed, noised, rescaled in intensity or resampled to another
grid, or smoothed. The search runs in three stages so it stays fast for thousands of
volumes:

1. **Coarse retrieval.** Every volume becomes two small vectors on ``retrieval_grid``.
   One is the zero-mean, unit-norm downsampled volume, compared with and without a
   left-right flip of the reference. The other is the magnitude of the Fourier
   transform of the downsampled volume smoothed by ``retrieval_smoothing_fraction`` of
   the grid. It does not change under circular shifts or flips, and the smoothing
   keeps a blurred copy ranked near its source. One matrix
   product per kind ranks the references, and the best ``candidates`` of each kind go
   to stage two.
2. **Alignment.** Volumes are resized to ``align_grid`` and smoothed with a Gaussian
   whose sigma is ``smoothing_fraction`` of the grid (2 voxels at 32). Noise,
   resampling and slight deformations then do not hide a copy, while the anatomy that
   distinguishes two patients survives. The query and its left-right flip are
   cross-correlated with each candidate by FFT. The peak within ``max_shift_fraction``
   of the grid is the normalised cross-correlation (NCC) at the best shift. NCC is
   unchanged by an intensity rescaling ``a * x + b`` with ``a > 0``, so rescaled copies
   score like exact ones. The distance is ``1 - NCC``.
3. **Matched blur.** A blurred copy loses NCC against its sharp source, and in a
   homogeneous cohort the loss can exceed the gap between two patients. The best
   ``blur_candidates`` distinct candidates are blurred by each sigma of
   ``blur_fractions`` (0.5 to 2 voxels at 16, 1 to 4 at 32) and correlated again.
   Gaussians compose, so a copy blurred by ``s`` matches its source blurred by ``s``
   almost exactly. The
   blurred NCC replaces the stage-two NCC when it is higher and specific: its distance
   is below ``blur_specificity`` times the runner-up's at the same blur. A smooth
   cohort average comes about equally close to every blurred patient and so keeps
   its stage-two distance. See :func:`_matched_blur`.

The copy threshold is calibrated from holdout-to-train distances: see
:func:`calibrate_threshold` and ``docs/evaluation.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgan.errors import ConfigError, InputError
from medgan.evaluation.stats import finite_or_none, not_computable

__all__ = ["SearchSettings", "NearestMatch", "nearest_references", "calibrate_threshold", "data_copying_test"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSettings:
    """Parameters of the search (see ``EvaluationConfig`` for the first six).

    ``retrieval_smoothing_fraction`` is the Gaussian sigma applied before the
    retrieval spectrum, as a share of the retrieval grid (2 voxels at 16). ``blur_fractions`` are the extra Gaussian sigmas of stage three as shares of the
    align grid, like ``smoothing_fraction``, so they mean the same millimetres at every
    grid. An empty tuple turns stage three off. ``blur_candidates`` (at least 2, since
    one runner-up is needed) distinct candidates per query are blurred.
    ``blur_specificity``: a blurred match counts only when its distance is below this
    share of the runner-up's.
    """

    retrieval_grid: int = 16
    align_grid: int = 32
    candidates: int = 8
    max_shift_fraction: float = 0.15
    smoothing_fraction: float = 1.0 / 16.0
    chunk_size: int = 64
    retrieval_smoothing_fraction: float = 1.0 / 8.0
    blur_fractions: tuple[float, ...] = (1.0 / 32.0, 1.0 / 16.0, 3.0 / 32.0, 1.0 / 8.0)
    blur_candidates: int = 2
    blur_specificity: float = 0.5

    def __post_init__(self) -> None:
        if self.blur_fractions and self.blur_candidates < 2:
            raise ConfigError(
                f"blur_candidates {self.blur_candidates} is invalid: matched blur compares the best candidate with a runner-up, "
                "so set it to 2 or more, or turn matched blur off with blur_fractions=()"
            )
        if not 0.0 < self.blur_specificity <= 1.0:
            raise ConfigError(f"blur_specificity {self.blur_specificity} is invalid; set a share in (0, 1], such as 0.5")
        if any(not 0.0 < fraction <= 0.25 for fraction in self.blur_fractions):
            raise ConfigError(f"blur_fractions {self.blur_fractions} is invalid; set each sigma to a share of the align grid in (0, 0.25]")


@dataclass(frozen=True)
class NearestMatch:
    """Nearest reference of each query: ``(Q,)`` arrays of index, similarity, flip and shift."""

    index: np.ndarray
    similarity: np.ndarray
    flipped: np.ndarray
    shift: np.ndarray  # (Q, 3) voxels on the align grid
    blur: np.ndarray | None = None  # (Q,) extra sigma in align-grid voxels applied to the reference, 0 for none

    @property
    def distance(self) -> np.ndarray:
        return np.clip(1.0 - self.similarity, 0.0, 2.0)


def _as_tensor(volumes: np.ndarray):
    import torch

    volumes = np.asarray(volumes)
    if volumes.ndim != 5 or volumes.shape[1] != 1:
        raise InputError(f"the copy search needs volumes shaped (N, 1, G, G, G), got {volumes.shape}")
    if not np.all(np.isfinite(volumes)):
        raise InputError("the copy search received volumes with NaN or Inf voxels; preprocess them first")
    return torch.from_numpy(np.ascontiguousarray(volumes, dtype=np.float32))


def _resize(batch, grid: int):
    """Resize ``(B, 1, G, G, G)`` to ``(B, 1, g, g, g)`` with g = min(grid, G); area averaging when shrinking."""
    import torch.nn.functional as F

    size = batch.shape[-1]
    target = min(grid, size)
    if target == size:
        return batch
    if size % target == 0:
        return F.avg_pool3d(batch, kernel_size=size // target)
    return F.interpolate(batch, size=(target,) * 3, mode="trilinear", align_corners=False, antialias=False)


def _gaussian_transfer(grid: int, sigma: float):
    """Return the ``(g, g, g//2+1)`` Fourier transfer function of a Gaussian of ``sigma`` voxels.

    Smoothing by multiplication in the Fourier domain is circular, which is harmless
    because scans have background at their borders, and it costs nothing extra here
    because the alignment works on Fourier transforms anyway.
    """
    import torch

    full = torch.fft.fftfreq(grid)
    half = torch.fft.rfftfreq(grid)
    squared = full[:, None, None] ** 2 + full[None, :, None] ** 2 + half[None, None, :] ** 2
    return torch.exp(-2.0 * (np.pi * sigma) ** 2 * squared)


def _blur_transfers(grid: int, fractions: tuple[float, ...]):
    """Return the ``(L, g, g, g//2+1)`` transfer functions of the extra blurs tried in matched comparison."""
    import torch

    if not fractions:
        return torch.zeros((0, grid, grid, grid // 2 + 1))
    return torch.stack([_gaussian_transfer(grid, fraction * grid) for fraction in fractions])


def _blurred_norms(fourier, transfers, grid: int):
    """Return ``(B, L)`` L2 norms of the volumes whose half spectra are ``fourier`` after each blur.

    Parseval on the half spectrum of ``rfftn``: bins of the last axis other than 0
    and, for even grids, the Nyquist bin stand for two bins of the full spectrum.
    """
    import torch

    weight = torch.full((grid // 2 + 1,), 2.0)
    weight[0] = 1.0
    if grid % 2 == 0:
        weight[-1] = 1.0
    power = fourier.abs() ** 2 * weight  # (B, a, a, a//2+1)
    energy = torch.einsum("bxyz,lxyz->bl", power, transfers**2) / grid**3
    return energy.clamp_min(0.0).sqrt()


def _standardise(flat):
    """Zero-mean, unit-norm rows of ``(B, V)``; a constant row stays zero instead of NaN."""
    centred = flat - flat.mean(dim=1, keepdim=True)
    return centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _retrieval_vectors(batch, grid: int, smoothing_fraction: float = 0.0):
    """Return spatial and flipped-spatial ``(B, g^3)`` vectors and Fourier-magnitude vectors.

    The spectrum is taken after a Gaussian of ``smoothing_fraction`` of the grid.
    Blurring a scan scales its high frequencies down, and the log-magnitude spectrum
    magnifies exactly those, so without smoothing a copy that is both blurred and
    shifted ranked below dozens of other patients in a homogeneous cohort. The spatial
    vectors stay sharp: smoothing them too made already smooth volumes (the benchmark's)
    look alike and lost a shifted, flipped exact copy among 1,000 references.
    """
    import torch

    small = _resize(batch, grid)
    spatial = _standardise(small.reshape(small.shape[0], -1))  # (B, g^3)
    flipped = _standardise(small.flip(-3).reshape(small.shape[0], -1))
    if smoothing_fraction > 0:
        size = small.shape[-1]
        dims = (-3, -2, -1)
        transfer = _gaussian_transfer(size, smoothing_fraction * size)
        small = torch.fft.irfftn(torch.fft.rfftn(small, dim=dims) * transfer, s=(size,) * 3, dim=dims)
    centred = small - small.mean(dim=(-3, -2, -1), keepdim=True)
    magnitude = torch.fft.rfftn(centred, dim=(-3, -2, -1)).abs()
    spectrum = _standardise(torch.log1p(magnitude).reshape(small.shape[0], -1))
    return spatial, flipped, spectrum


def _align_spectra(batch, settings: SearchSettings, align_grid: int):
    """Return Fourier transforms ``(B, a, a, a//2+1)`` of smoothed, zero-mean, unit-norm align-grid volumes.

    Also returns the same for the left-right flipped volumes.
    """
    import torch

    small = _resize(batch, align_grid)[:, 0]  # (B, a, a, a)
    grid = small.shape[-1]
    dims = (-3, -2, -1)
    transfer = _gaussian_transfer(grid, settings.smoothing_fraction * grid)
    smooth = torch.fft.irfftn(torch.fft.rfftn(small, dim=dims) * transfer, s=(grid,) * 3, dim=dims)
    standard = _standardise(smooth.reshape(len(smooth), -1)).reshape(smooth.shape)
    return torch.fft.rfftn(standard, dim=dims), torch.fft.rfftn(standard.flip(-3), dim=dims)


def _shift_window(grid: int, fraction: float):
    """Boolean ``(g, g, g)`` mask of circular shifts whose components are within the window."""
    import torch

    limit = int(np.floor(fraction * grid))
    index = torch.arange(grid)
    allowed = torch.minimum(index, grid - index) <= limit
    return allowed[:, None, None] & allowed[None, :, None] & allowed[None, None, :]


def _correlation_peaks(query_fourier, reference_fourier, grid: int, fraction: float):
    """Return the peak and its flat position of the circular cross-correlation within the shift window.

    ``query_fourier`` and the conjugated ``reference_fourier`` broadcast to
    ``(..., g, g, g//2+1)``; pairs go through the inverse FFT in slices of the first
    axis to bound memory.
    """
    import torch

    window = torch.nonzero(_shift_window(grid, fraction).reshape(-1)).reshape(-1)  # (w,)
    shape = torch.broadcast_shapes(query_fourier.shape, reference_fourier.shape)[:-3]
    per_row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    rows_per_slice = max(1, 256 // per_row)
    peaks, positions = [], []
    for first in range(0, shape[0], rows_per_slice):
        product = query_fourier[first : first + rows_per_slice] * reference_fourier[first : first + rows_per_slice]
        correlation = torch.fft.irfftn(product, s=(grid,) * 3, dim=(-3, -2, -1)).flatten(-3)  # (n, ..., g^3)
        peak, position = correlation[..., window].max(dim=-1)
        peaks.append(peak)
        positions.append(window[position])
    return torch.cat(peaks), torch.cat(positions)


def _matched_blur(query_fourier, peaks, candidates, ref_fourier_all, ref_norms_all, transfers, grid: int, settings: SearchSettings):
    """Stage three: compare each query with its best candidates blurred to its own sharpness.

    A copy that was smoothed (a blurred training scan, or a generator that renders
    detail softly) loses NCC against the sharp original, and the loss can be larger
    than the gap between two patients of a homogeneous cohort. Blurring the candidate
    by the same Gaussian undoes it: Gaussians compose, so a copy blurred by ``s``
    voxels matches its source blurred by ``s`` almost exactly. The ``blur_candidates``
    best distinct candidates of stage two are blurred at every level of
    ``blur_fractions`` and cross-correlated with the query again by FFT. NCC divides
    by the norm of the blurred candidate.

    Blurring also pulls any smooth scan, such as the cohort average, towards every
    training scan. So a blurred comparison counts only where it singles out one
    training scan: its distance ``1 - NCC`` is below ``blur_specificity`` times that
    of the runner-up candidate at the same level. A copy matches its source far better
    than any other patient; an average matches all of them about equally.

    Args:
        query_fourier: ``(c, 2, a, a, a//2+1)`` spectra of the queries and their flips.
        peaks: ``(c, 2, 2k)`` stage-two NCC of every query, flip and candidate.
        candidates: ``(c, 2k)`` reference indices of the candidates.
        ref_fourier_all: ``(R, a, a, a//2+1)`` conjugated reference spectra.
        ref_norms_all: ``(R, L)`` norms of the references after each blur level.
        transfers: ``(L, a, a, a//2+1)`` transfer functions of the blur levels.
        grid: the align grid.
        settings: the search parameters.

    Returns:
        Per query the best specific NCC (``-inf`` where no level is specific), its
        candidate column, flip, flat shift position and level index; None when fewer
        than two distinct candidates exist, since then nothing can be shown specific.
    """
    import torch

    size, _, pairs = peaks.shape
    rows = torch.arange(size)
    per_candidate, candidate_flips = peaks.max(dim=1)  # (c, 2k)
    # The two retrieval kinds may propose the same reference twice; keep its first column.
    same = candidates[:, :, None] == candidates[:, None, :]  # (c, 2k, 2k)
    earlier = torch.ones(pairs, pairs, dtype=torch.bool).tril(-1)
    per_candidate = per_candidate.masked_fill((same & earlier).any(dim=-1), float("-inf"))
    distinct = torch.isfinite(per_candidate).sum(dim=1)
    count = min(settings.blur_candidates, int(distinct.min()))
    if count < 2:
        return None
    top = per_candidate.topk(count, dim=1).indices  # (c, m)
    top_flips = candidate_flips.gather(1, top)
    top_references = candidates.gather(1, top)  # (c, m)
    chosen = query_fourier[rows[:, None], top_flips]  # (c, m, a, a, a//2+1)
    blurred = ref_fourier_all[top_references][:, :, None] * transfers  # (c, m, L, a, a, a//2+1)
    ncc, positions = _correlation_peaks(chosen[:, :, None], blurred, grid, settings.max_shift_fraction)
    ncc = ncc / ref_norms_all[top_references].clamp_min(1e-8)  # (c, m, L)
    ordered, order = ncc.sort(dim=1, descending=True)
    winner_distance = (1.0 - ordered[:, 0]).clamp_min(0.0)  # (c, L)
    runner_up_distance = (1.0 - ordered[:, 1]).clamp_min(0.0)
    specific = winner_distance < settings.blur_specificity * runner_up_distance
    score = torch.where(specific, ordered[:, 0], torch.tensor(float("-inf")))  # (c, L)
    best_score, level = score.max(dim=1)  # (c,)
    slot = order[rows, 0, level]  # (c,) index into the m candidates
    return best_score, top[rows, slot], top_flips[rows, slot], positions[rows, slot, level], level


def nearest_references(
    queries: np.ndarray, references: np.ndarray, settings: SearchSettings = SearchSettings(), *, progress: bool = False
) -> NearestMatch:
    """Return the nearest reference of every query after coarse retrieval, alignment and matched blur.

    Args:
        queries: ``(Q, 1, G, G, G)`` volumes, for example synthetic scans.
        references: ``(R, 1, G, G, G)`` volumes on the same grid, for example training scans.
        settings: the search parameters.
        progress: show a progress bar over query chunks.

    Raises:
        InputError: shapes differ, a set is empty, or a volume contains NaN/Inf.
    """
    import torch

    query_tensor, reference_tensor = _as_tensor(queries), _as_tensor(references)
    if query_tensor.shape[1:] != reference_tensor.shape[1:]:
        raise InputError(f"queries {tuple(query_tensor.shape[1:])} and references {tuple(reference_tensor.shape[1:])} must share one grid")
    if len(reference_tensor) == 0:
        raise InputError("the copy search needs at least one reference scan")
    count = len(query_tensor)
    if count == 0:
        empty = np.zeros(0)
        return NearestMatch(empty.astype(int), empty, empty.astype(bool), np.zeros((0, 3), dtype=int))

    grid = min(settings.align_grid, query_tensor.shape[-1])
    with torch.inference_mode():
        transfers = _blur_transfers(grid, settings.blur_fractions)  # (L, a, a, a//2+1)
        ref_spatial, ref_flipped, ref_spectrum, ref_fourier, ref_norms = [], [], [], [], []
        for start in range(0, len(reference_tensor), settings.chunk_size):
            chunk = reference_tensor[start : start + settings.chunk_size]
            spatial, flipped, spectrum = _retrieval_vectors(chunk, settings.retrieval_grid, settings.retrieval_smoothing_fraction)
            ref_spatial.append(spatial)
            ref_flipped.append(flipped)
            ref_spectrum.append(spectrum)
            fourier = _align_spectra(chunk, settings, grid)[0]
            ref_fourier.append(fourier.conj())
            ref_norms.append(_blurred_norms(fourier, transfers, grid))
        ref_spatial_all = torch.cat(ref_spatial)  # (R, r^3)
        ref_flipped_all = torch.cat(ref_flipped)
        ref_spectrum_all = torch.cat(ref_spectrum)
        ref_fourier_all = torch.cat(ref_fourier)  # (R, a, a, a//2+1), conjugated
        ref_norms_all = torch.cat(ref_norms)  # (R, L)
        k = min(settings.candidates, len(reference_tensor))

        best_index = np.zeros(count, dtype=np.int64)
        best_similarity = np.full(count, -1.0)
        best_flip = np.zeros(count, dtype=bool)
        best_shift = np.zeros((count, 3), dtype=np.int64)
        best_blur = np.zeros(count)
        starts = range(0, count, settings.chunk_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="copy search", unit="chunk", leave=False)
        for start in starts:
            chunk = query_tensor[start : start + settings.chunk_size]
            size = len(chunk)
            rows = torch.arange(size)
            spatial, _, spectrum = _retrieval_vectors(chunk, settings.retrieval_grid, settings.retrieval_smoothing_fraction)
            coarse_spatial = torch.maximum(spatial @ ref_spatial_all.T, spatial @ ref_flipped_all.T)  # (c, R)
            coarse_spectrum = spectrum @ ref_spectrum_all.T
            candidates = torch.cat([coarse_spatial.topk(k, dim=1).indices, coarse_spectrum.topk(k, dim=1).indices], dim=1)  # (c, 2k)
            pairs = candidates.shape[1]
            query_fourier = torch.stack(_align_spectra(chunk, settings, grid), dim=1)  # (c, 2, a, a, a//2+1)
            # Every query against each candidate, unflipped and flipped: peaks (c, 2, 2k).
            peaks, positions = _correlation_peaks(
                query_fourier[:, :, None], ref_fourier_all[candidates][:, None], grid, settings.max_shift_fraction
            )
            flat = peaks.flatten(1).argmax(dim=1)  # (c,)
            flips, columns = flat // pairs, flat % pairs
            similarity = peaks[rows, flips, columns]
            position = positions[rows, flips, columns]
            blur = torch.zeros(size)
            if len(transfers):
                matched = _matched_blur(query_fourier, peaks, candidates, ref_fourier_all, ref_norms_all, transfers, grid, settings)
                if matched is not None:
                    level_similarity, level_column, level_flip, level_position, level = matched
                    better = level_similarity > similarity
                    columns = torch.where(better, level_column, columns)
                    flips = torch.where(better, level_flip, flips)
                    similarity = torch.where(better, level_similarity, similarity)
                    position = torch.where(better, level_position, position)
                    sigmas = torch.tensor([fraction * grid for fraction in settings.blur_fractions])
                    blur = torch.where(better, sigmas[level], blur)
            best_index[start : start + size] = candidates[rows, columns].numpy()
            best_similarity[start : start + size] = similarity.double().numpy()
            best_flip[start : start + size] = flips.numpy().astype(bool)
            best_blur[start : start + size] = blur.double().numpy()
            offsets = np.stack(np.unravel_index(position.numpy(), (grid,) * 3), axis=1)
            best_shift[start : start + size] = np.where(offsets <= grid // 2, offsets, offsets - grid)
    return NearestMatch(best_index, np.clip(best_similarity, -1.0, 1.0), best_flip, best_shift, best_blur)


def calibrate_threshold(holdout_distances: np.ndarray, *, quantile: float, ratio: float) -> dict[str, Any]:
    """Return the copy threshold from holdout-to-train distances, and the rule as text.

    The rule: a synthetic scan is a copy of its nearest training scan when its distance
    ``1 - NCC`` is below ``ratio`` times the ``quantile`` of the distances from holdout
    scans (real patients the generator never saw) to their nearest training scans.
    Holdout scans show how close a new, real patient naturally comes to the training set
    at this grid and in this cohort. A synthetic scan much closer than that has no
    innocent explanation. With one calibration scan the quantile is its distance.
    """
    distances = np.asarray(holdout_distances, dtype=np.float64)
    if distances.size == 0:
        raise InputError("the copy threshold needs at least one holdout scan for calibration; add holdout scans")
    reference = float(np.quantile(distances, quantile)) if distances.size > 1 else float(distances[0])
    distance_threshold = ratio * reference
    return {
        "distance_threshold": distance_threshold,
        "similarity_threshold": 1.0 - distance_threshold,
        "calibration_quantile": reference,
        "n_calibration": int(distances.size),
        "holdout_distances": sorted(float(d) for d in distances),
        "rule": (
            f"flag a synthetic scan as a copy when 1 - NCC to its nearest training scan (after shift, left-right flip, "
            f"intensity alignment and, where it singles out one training scan, matched blur) is below {ratio:g} x the {quantile:g} quantile of the same distance from "
            f"{distances.size} calibration holdout scans to their nearest training scans"
        ),
    }


def data_copying_test(
    train_features: np.ndarray,
    holdout_features: np.ndarray,
    synthetic_features: np.ndarray,
    holdout_distances: np.ndarray,
    synthetic_distances: np.ndarray,
    *,
    rng: np.random.Generator,
    min_per_cell: int = 3,
    min_total: int = 20,
) -> dict[str, Any]:
    """Return the data-copying statistic C_T of Meehan, Chaudhuri and Dasgupta (AISTATS 2020).

    Training features are partitioned into cells by k-means. In each cell holding at
    least ``min_per_cell`` holdout and synthetic scans, a Mann-Whitney U test compares
    the distances to the nearest training scan of synthetic scans with those of holdout
    scans. ``Z_U`` is negative when synthetic scans are closer. C_T averages ``Z_U``
    weighted by the cell's share of holdout scans. C_T well below 0 (Meehan et al. use
    -3) is evidence of data copying; well above 0 of underfitting.
    """
    from scipy.cluster.vq import kmeans2

    counts = {"holdout": int(len(holdout_distances)), "synthetic": int(len(synthetic_distances)), "min_total": min_total}
    if len(holdout_distances) < min_total or len(synthetic_distances) < min_total:
        return not_computable(f"the data-copying test needs at least {min_total} holdout and synthetic scans", counts)
    distinct = len(np.unique(np.round(train_features, 8), axis=0))
    # k-means++ needs at least as many distinct training points as cells (a collapsed
    # feature set has one), else its seeding divides by zero.
    cells = int(max(1, min(10, len(holdout_distances) // 10, len(train_features) // 5, distinct)))
    if cells > 1:
        scale = train_features.std(axis=0) + 1e-8
        centroids, _ = kmeans2(train_features / scale, cells, seed=rng, minit="++")
        def assign(features: np.ndarray) -> np.ndarray:
            squared = (((features / scale)[:, None, :] - centroids[None]) ** 2).sum(-1)
            return squared.argmin(axis=1)
        holdout_cells, synthetic_cells = assign(holdout_features), assign(synthetic_features)
    else:
        holdout_cells = np.zeros(len(holdout_distances), dtype=int)
        synthetic_cells = np.zeros(len(synthetic_distances), dtype=int)
    per_cell, weights, scores = [], [], []
    for cell in range(cells):
        held = holdout_distances[holdout_cells == cell]
        made = synthetic_distances[synthetic_cells == cell]
        if len(held) < min_per_cell or len(made) < min_per_cell:
            continue
        m, n = len(made), len(held)
        greater = (made[:, None] > held[None, :]).sum() + 0.5 * (made[:, None] == held[None, :]).sum()
        z_score = (greater - m * n / 2.0) / np.sqrt(m * n * (m + n + 1) / 12.0)
        per_cell.append({"cell": cell, "holdout": int(n), "synthetic": int(m), "z_u": finite_or_none(z_score)})
        weights.append(n)
        scores.append(z_score)
    if not scores:
        return not_computable(f"no cell contains {min_per_cell} holdout and synthetic scans", counts)
    statistic = float(np.average(scores, weights=weights))
    return {
        "value": finite_or_none(statistic),
        "cells": per_cell,
        "copying": bool(statistic < -3.0),
        "interpretation": "C_T < -3 is evidence of data copying (Meehan et al. 2020); values near 0 match holdout closeness",
    }
