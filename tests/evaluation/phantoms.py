"""Generated head-like phantoms for the evaluation tests (no real scans needed)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def make_phantoms(count: int, grid: int, seed: int, *, homogeneous: bool = False) -> np.ndarray:
    """Return ``(count, 1, grid, grid, grid)`` float32 phantoms in [-1, 1].

    Each phantom is an ellipsoid "head" with smooth random internal texture. With
    ``homogeneous`` every phantom shares the ellipsoid and most of the texture, so the
    scans look alike the way one cohort's brain MRIs do.
    """
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*[np.linspace(-1, 1, grid)] * 3, indexing="ij")
    shared = ndimage.gaussian_filter(rng.standard_normal((grid,) * 3), grid / 8)
    shared /= np.abs(shared).max()
    volumes = []
    for _ in range(count):
        if homogeneous:
            radii = 0.65 + rng.uniform(-0.03, 0.03, 3)
            centre = rng.uniform(-0.03, 0.03, 3)
        else:
            radii = rng.uniform(0.45, 0.7, 3)
            centre = rng.uniform(-0.08, 0.08, 3)
        inside = sum(((axis - c) / r) ** 2 for axis, c, r in zip(axes, centre, radii)) <= 1.0
        own = ndimage.gaussian_filter(rng.standard_normal((grid,) * 3), grid / 10)
        own /= np.abs(own).max()
        texture = 0.6 * shared + 0.4 * own if homogeneous else own
        volume = np.where(inside, 0.2 + 0.5 * texture, -1.0)
        volumes.append(np.clip(volume, -1, 1))
    return np.stack(volumes)[:, None].astype(np.float32)  # (N, 1, G, G, G)
