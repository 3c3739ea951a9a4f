"""Geometry of exported volumes in DICOM form.

Synthetic volumes use the profile's canonical affine
(:func:`medgan.data.preprocess.canonical_affine`), never a real scan's, which would be
a fingerprint of the patient's position.  DICOM stores geometry in LPS patient coordinates as a row direction, a column
direction and one position per slice.  Readers (SimpleITK, GDCM, medgan's own loader)
rebuild the third axis from the cross product of the two directions and sort slices
along it, so a left-handed voxel grid cannot come back in the same voxel order: it
comes back with the slice axis reversed, describing the same world points.
:func:`dicom_reload_affine` returns that affine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medgan.errors import ConfigError

__all__ = [
    "SliceGeometry",
    "slice_geometry",
    "dicom_reload_affine",
    "RAS_TO_LPS",
]

# Flips x and y: RAS+ (nibabel) <-> LPS (DICOM).  Its own inverse.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

# Directions that are not orthogonal within this tolerance are sheared; DICOM image
# planes cannot describe a shear and readers would silently drop it.
_ORTHOGONALITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class SliceGeometry:
    """DICOM image plane attributes of one volume, in LPS millimetres.

    ``positions`` contains ImagePositionPatient of each slice ``k`` of the volume, and
    ``order`` the slice indices sorted along the plane normal (the order readers use,
    and the order InstanceNumber follows).
    """

    orientation: tuple[float, ...]  # ImageOrientationPatient: row then column cosines
    pixel_spacing: tuple[float, float]  # (between rows, between columns)
    slice_spacing: float
    positions: np.ndarray  # (K, 3)
    order: np.ndarray  # (K,)


def _check_affine(affine: np.ndarray) -> np.ndarray:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ConfigError(f"affine must be a finite 4x4 matrix, got {np.asarray(affine).tolist()}")
    columns = affine[:3, :3]
    norms = np.linalg.norm(columns, axis=0)
    if np.any(norms < 1e-9):
        raise ConfigError(f"affine {affine.tolist()} has a zero-length voxel axis")
    unit = columns / norms
    gram = unit.T @ unit
    if np.max(np.abs(gram - np.eye(3))) > _ORTHOGONALITY_TOLERANCE:
        raise ConfigError(
            f"affine {affine.tolist()} has non-orthogonal voxel axes (a shear); DICOM image planes cannot "
            "represent it. Resample the volume to an orthogonal grid first"
        )
    return affine


def slice_geometry(affine: np.ndarray, n_slices: int) -> SliceGeometry:
    """Convert a voxel-to-RAS+ affine into DICOM image plane attributes.

    Voxel axis ``i`` becomes the DICOM column index (along a row), ``j`` the row index
    and ``k`` the slice.  Pixel ``(row r, column c)`` of slice ``k`` is voxel
    ``(c, r, k)``.

    Raises:
        ConfigError: the affine is not a finite 4x4 matrix or its axes are sheared.
    """
    affine = _check_affine(affine)
    lps = RAS_TO_LPS @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_direction = lps[:3, 0] / spacing[0]
    column_direction = lps[:3, 1] / spacing[1]
    indices = np.stack([np.zeros(n_slices), np.zeros(n_slices), np.arange(n_slices), np.ones(n_slices)])  # (4, K)
    positions = (lps @ indices)[:3].T  # (K, 3)
    normal = np.cross(row_direction, column_direction)
    order = np.argsort(positions @ normal, kind="stable")
    orientation = tuple(float(value) for value in np.concatenate([row_direction, column_direction]))
    return SliceGeometry(
        orientation=orientation,
        pixel_spacing=(float(spacing[1]), float(spacing[0])),
        slice_spacing=float(spacing[2]),
        positions=positions,
        order=order,
    )


def dicom_reload_affine(affine: np.ndarray, n_slices: int) -> np.ndarray:
    """Return the affine a standard reader builds from a series written for ``affine``.

    Equal to ``affine`` for a right-handed grid; for a left-handed grid the slice axis
    is reversed (the same world points, the slices in the opposite order).
    """
    affine = _check_affine(affine)
    if np.linalg.det(affine[:3, :3]) > 0:
        return affine.copy()
    flip = np.eye(4)
    flip[2, 2] = -1.0
    flip[2, 3] = n_slices - 1
    return affine @ flip
