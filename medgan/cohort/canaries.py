"""Canaries: a rare, distinctive feature planted in a few patients, and its detector.

The canary is a cube of 3 x 3 x 3 cells of 24 mm with a checkerboard texture: the even
cells are brighter than the tissue by ``contrast * WM_REFERENCE``, the odd cells are left
as they are.  No anatomy has sharp-edged cubes on a 24 mm lattice, so a generated scan that
shows one has learned it from a canary patient, even when the anatomy around it is new.
Whole-volume nearest-neighbour search does not see such a leak, because the rest of the
scan differs.

:func:`detect_canary` scores a volume by the largest normalised cross-correlation between
the pattern and any window of the volume.  The score ignores gain and offset, so it works
on raw scans, on volumes in the model's ``[-1, 1]`` range and on exported files alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import signal

from medgan.errors import ConfigError

__all__ = [
    "CanaryPattern",
    "CANARY",
    "canary_kernel",
    "canary_positions",
    "plant_canary",
    "detect_canary",
    "canary_threshold",
    "CANARY_SCORE_FLOOR",
]


@dataclass(frozen=True)
class CanaryPattern:
    """Geometry of the canary in millimetres."""

    cells: int = 3
    cell_mm: float = 24.0

    @property
    def size_mm(self) -> float:
        """Edge length of the cube."""
        return self.cells * self.cell_mm


CANARY = CanaryPattern()
# Sub-samples per voxel and axis when the cell edge does not fall on voxel edges.
_SUPERSAMPLE = 4
# Lowest threshold of canary_threshold.  A planted canary scores above 0.9, and still
# about 0.75 half a voxel off the lattice or 0.65 at a quarter of the default contrast.
CANARY_SCORE_FLOOR = 0.6
# Windows whose standard deviation is below this share of the volume's are treated as
# flat (background), where the correlation is undefined; they score 0.
_FLAT_WINDOW = 0.05


def canary_kernel(spacing_mm: float, pattern: CanaryPattern = CANARY) -> np.ndarray:
    """Return the canary at ``spacing_mm``: weights in [0, 1] (1 = bright cell), shape (n, n, n).

    ``n`` is the cube edge in voxels, rounded.  Each voxel contains the bright fraction of
    its volume, so the pattern is exact when the cells fall on voxel edges and averaged
    otherwise.

    Raises:
        ConfigError: the spacing is not positive or makes the cube smaller than 3 voxels.
    """
    if not spacing_mm > 0:
        raise ConfigError(f"spacing_mm must be positive, got {spacing_mm}")
    size = int(round(pattern.size_mm / spacing_mm))
    if size < 3:
        raise ConfigError(
            f"at {spacing_mm} mm per voxel the {pattern.size_mm:g} mm canary spans {size} voxel(s); "
            "its texture needs at least 3, so use a spacing of at most a third of the cube"
        )
    step = pattern.size_mm / size
    offsets = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE
    # Sub-sample positions along one axis, in cells: (size * _SUPERSAMPLE,).
    positions = ((np.arange(size)[:, None] + offsets[None, :]) * step / pattern.cell_mm).reshape(-1)
    cell_index = np.floor(positions).astype(int)
    x, y, z = np.meshgrid(cell_index, cell_index, cell_index, indexing="ij")
    bright = ((x + y + z) % 2 == 0).astype(np.float32)
    # (n*s, n*s, n*s) -> (n, s, n, s, n, s) -> mean over the sub-sample axes.
    blocks = bright.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, size, _SUPERSAMPLE)
    return blocks.mean(axis=(1, 3, 5))


def canary_positions(brain: np.ndarray, kernel_size: int) -> np.ndarray:
    """Return the (K, 3) corner indices where the whole cube lies in the brain.

    When no position is fully inside (a brain smaller than the cube), the positions
    with the largest brain share are returned.
    """
    grid = np.asarray(brain.shape)
    if np.any(grid < kernel_size):
        raise ConfigError(f"a canary of {kernel_size} voxels does not fit a volume of shape {tuple(grid)}")
    inside = (brain > 0.5).astype(np.float64)
    # Share of brain voxels in every cube-sized window, indexed by the window corner.
    share = _window_sums(inside, kernel_size) / kernel_size**3
    full = np.argwhere(share >= 1.0 - 1e-6)
    if len(full) == 0:
        full = np.argwhere(share >= share.max() - 1e-6)
    return full


def plant_canary(volume: np.ndarray, corner: Iterable[int], kernel: np.ndarray, intensity: float) -> np.ndarray:
    """Return ``volume`` with ``intensity * kernel`` added at ``corner`` (the cube's lowest index)."""
    result = np.array(volume, dtype=np.float32, copy=True)
    i, j, k = (int(value) for value in corner)
    n = kernel.shape[0]
    result[i : i + n, j : j + n, k : k + n] += intensity * kernel
    return result


def _window_sums(volume: np.ndarray, size: int) -> np.ndarray:
    """Return the sum of every ``size``-cube window of ``volume`` (valid windows only)."""
    box = np.ones((size, size, size), dtype=np.float64)
    return signal.fftconvolve(volume, box, mode="valid")


def detect_canary(volume: np.ndarray, spacing_mm: float, pattern: CanaryPattern = CANARY) -> float:
    """Return the canary score of a volume: the maximum normalised cross-correlation, in [-1, 1].

    The correlation is computed between the zero-mean canary kernel and every window
    of the same size.  Windows flatter than a twentieth of the volume's standard
    deviation score 0, because background has no texture to correlate with.  A planted canary scores about 0.7 to 0.95 depending on noise and on
    the tissue beneath it; canary-free brains score far less (see :func:`canary_threshold`).

    NOTE: at 12 mm voxels (16^3) the cells are two voxels wide, so a canary drawn half a
    voxel off the lattice on every axis is blurred to a score of about 0.4, below
    :data:`CANARY_SCORE_FLOOR`.  Planted canaries sit on the lattice, and the model grid
    keeps it, but a detector miss at 16^3 is weaker evidence than at finer grids.

    Args:
        volume: (X, Y, Z) array in any intensity unit.
        spacing_mm: isotropic voxel spacing of ``volume``.
        pattern: the canary geometry.

    Raises:
        ConfigError: the volume is not 3D, is not finite, or is smaller than the canary.
    """
    volume = np.asarray(volume, dtype=np.float64)
    if volume.ndim != 3:
        raise ConfigError(f"detect_canary expects an (X, Y, Z) volume, got shape {volume.shape}")
    if not np.all(np.isfinite(volume)):
        raise ConfigError("detect_canary got a volume with NaN or Inf voxels; replace them before scoring")
    kernel = canary_kernel(spacing_mm, pattern).astype(np.float64)
    size = kernel.shape[0]
    if any(extent < size for extent in volume.shape):
        raise ConfigError(f"volume of shape {volume.shape} is smaller than the {size}-voxel canary at {spacing_mm} mm")
    if float(np.ptp(volume)) == 0.0:
        return 0.0
    count = kernel.size
    centred = kernel - kernel.mean()
    centred /= np.linalg.norm(centred)
    # Cross-correlation is convolution with the kernel flipped on every axis.
    numerator = signal.fftconvolve(volume, centred[::-1, ::-1, ::-1], mode="valid")
    sums = _window_sums(volume, size)
    squares = _window_sums(volume * volume, size)
    variance_sum = np.maximum(squares - sums * sums / count, 0.0)
    window_std = np.sqrt(variance_sum / count)
    flat = window_std < _FLAT_WINDOW * max(float(volume.std()), 1e-12)
    score = np.where(flat, 0.0, numerator / np.sqrt(np.maximum(variance_sum, 1e-30)))
    return float(np.clip(score.max(), -1.0, 1.0))


def canary_threshold(negative_scores: Iterable[float], margin: float = 0.05, floor: float = CANARY_SCORE_FLOOR) -> float:
    """Return the score above which a volume counts as showing the canary.

    The threshold is the highest score of volumes known to be canary-free (real scans
    of patients without a canary) plus ``margin``, so no known negative is counted.
    It is never below ``floor``, because real anatomy is smooth and scores low, while
    noisy generated volumes reach higher scores by chance: the maximum over 300
    volumes of 16^3 Gaussian noise, upsampled from 8^3, was 0.48.

    Raises:
        ConfigError: no negative scores were given.
    """
    scores = [float(score) for score in negative_scores]
    if not scores:
        raise ConfigError("canary_threshold needs the scores of canary-free scans to calibrate on; got none")
    return max(max(scores) + margin, floor)
