"""The condition of the cohort: a white-matter lesion of controlled size and contrast.

A lesion is a soft-edged ellipsoid added to the template before the patient's warp, so it
deforms with the anatomy.  Its intensity is ``contrast * WM_REFERENCE`` above the tissue
it lies in, which makes the effect a known number that a test can measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Lesion", "draw_lesion", "lesion_profile", "lesion_candidates"]


@dataclass(frozen=True)
class Lesion:
    """One lesion in template-grid voxel coordinates.

    Attributes:
        centre: (3,) centre in template voxels.
        radii_mm: (3,) semi-axes in millimetres.
        contrast: intensity added at the core, as a fraction of white matter.
    """

    centre: np.ndarray
    radii_mm: np.ndarray
    contrast: float


def lesion_candidates(wm: np.ndarray, brain: np.ndarray, margin_voxels: float) -> np.ndarray:
    """Return the (K, 3) voxel indices where a lesion centre may go.

    A centre must lie in white matter (probability above one half) at least
    ``margin_voxels`` inside the brain, so the lesion does not spill into the background.
    When no voxel meets the margin (a coarse grid), the deepest white-matter voxels are used.
    """
    inside = ndimage.distance_transform_edt(brain > 0.5)
    white = wm > 0.5
    candidates = np.argwhere(white & (inside >= margin_voxels))
    if len(candidates) == 0:
        depth = np.where(white, inside, 0.0)
        candidates = np.argwhere(depth >= depth.max())
    return candidates


def draw_lesion(
    rng: np.random.Generator,
    candidates: np.ndarray,
    *,
    radius_mm: tuple[float, float],
    contrast: float,
) -> Lesion:
    """Draw a lesion centre among ``candidates`` and three semi-axes in ``radius_mm``."""
    centre = candidates[int(rng.integers(len(candidates)))].astype(np.float64)
    centre = centre + rng.uniform(-0.5, 0.5, size=3)
    radii = rng.uniform(radius_mm[0], radius_mm[1], size=3)
    return Lesion(centre=centre, radii_mm=radii, contrast=float(contrast))


def lesion_profile(lesion: Lesion, grid: int, spacing_mm: float) -> np.ndarray:
    """Return the lesion's weight per voxel in [0, 1]: 1 in the core, a one-voxel linear edge.

    The edge is one voxel wide at every grid, so the core is the set of voxels whose
    centre lies more than half a voxel inside the ellipsoid.
    """
    axis = np.arange(grid, dtype=np.float64)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    radii_voxels = lesion.radii_mm / spacing_mm
    normalised = np.sqrt(
        ((x - lesion.centre[0]) / radii_voxels[0]) ** 2
        + ((y - lesion.centre[1]) / radii_voxels[1]) ** 2
        + ((z - lesion.centre[2]) / radii_voxels[2]) ** 2
    )
    # Distance inside the surface in voxels, approximated along the mean semi-axis.
    depth = (1.0 - normalised) * float(radii_voxels.mean())
    return np.clip(depth + 0.5, 0.0, 1.0).astype(np.float32)
