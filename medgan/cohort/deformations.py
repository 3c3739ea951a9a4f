"""Random anatomy and acquisition variation, each drawn first and then applied deterministically.

Every ``draw_*`` function takes a :class:`numpy.random.Generator` and returns plain
parameters; every ``apply_*`` function is a pure function of those parameters.  A
patient can therefore be rebuilt from its seed alone, and a test can render the same
patient with one factor switched off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre
from scipy import ndimage
from scipy.spatial.transform import Rotation

__all__ = [
    "Warp",
    "draw_warp",
    "identity_warp",
    "warp_coordinates",
    "apply_warp",
    "draw_bias_coefficients",
    "bias_field",
    "add_rician_noise",
]

# Control points per axis of the smooth displacement field; 5 gives bends of about a
# quarter of the brain, the scale of real inter-subject differences after affine alignment.
CONTROL_POINTS = 5
BIAS_DEGREE = 3


@dataclass(frozen=True)
class Warp:
    """A patient's deformation of the template, in output-voxel terms.

    ``matrix`` and ``shift_mm`` form the affine part about the grid centre; ``control_mm``
    is the ``(3, c, c, c)`` displacement at the control points, in millimetres.
    """

    matrix: np.ndarray
    shift_mm: np.ndarray
    control_mm: np.ndarray


def identity_warp() -> Warp:
    """Return the warp that leaves the template unchanged."""
    return Warp(np.eye(3), np.zeros(3), np.zeros((3, CONTROL_POINTS, CONTROL_POINTS, CONTROL_POINTS)))


def draw_warp(rng: np.random.Generator, *, scale: float, rotation_deg: float, shift_mm: float, deformation_mm: float) -> Warp:
    """Draw a random head-size scaling, rotation, shift and smooth displacement field.

    Args:
        rng: the patient's generator.
        scale: maximum relative change of size per axis (0.05 is +-5 %).
        rotation_deg: maximum rotation about each axis in degrees.
        shift_mm: maximum translation per axis.
        deformation_mm: standard deviation of the control-point displacements.
    """
    factors = 1.0 + rng.uniform(-scale, scale, size=3)
    angles = rng.uniform(-rotation_deg, rotation_deg, size=3)
    rotation = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    matrix = rotation @ np.diag(factors)
    shift = rng.uniform(-shift_mm, shift_mm, size=3)
    control = rng.normal(0.0, deformation_mm, size=(3, CONTROL_POINTS, CONTROL_POINTS, CONTROL_POINTS))
    return Warp(matrix=matrix, shift_mm=shift, control_mm=control)


def warp_coordinates(warp: Warp, grid: int, spacing_mm: float) -> np.ndarray:
    """Return, for every output voxel, the template voxel it samples; shape (3, G, G, G).

    The output voxel ``x`` samples the template at ``c + A^-1 (x - c - t) - u(x)``, with
    ``c`` the grid centre, ``A`` the affine matrix, ``t`` the shift and ``u`` the cubic
    interpolation of the control-point displacements.  Inverting ``A`` makes a scale
    above 1 enlarge the anatomy.
    """
    centre = (grid - 1) / 2.0
    axis = np.arange(grid, dtype=np.float64) - centre
    # (3, G, G, G): output voxel offsets from the grid centre.
    offsets = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"))
    inverse = np.linalg.inv(warp.matrix)
    shifted = offsets - (warp.shift_mm / spacing_mm)[:, None, None, None]
    # (3, G*G*G) -> (3, G, G, G): apply the inverse affine to every offset.
    sampled = (inverse @ shifted.reshape(3, -1)).reshape(3, grid, grid, grid) + centre
    if np.any(warp.control_mm):
        step = (CONTROL_POINTS - 1) / max(grid - 1, 1)
        control_axis = np.arange(grid, dtype=np.float64) * step
        control_coords = np.stack(np.meshgrid(control_axis, control_axis, control_axis, indexing="ij"))
        for axis_index in range(3):
            displacement = ndimage.map_coordinates(warp.control_mm[axis_index], control_coords, order=3, mode="nearest")
            sampled[axis_index] -= displacement / spacing_mm
    return sampled


def apply_warp(volume: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    """Sample ``volume`` at ``coordinates`` (from :func:`warp_coordinates`) with linear interpolation.

    Linear interpolation keeps the warp linear in the image, so a layer added before
    warping (a lesion) equals the warp of that layer added afterwards.
    """
    return ndimage.map_coordinates(volume, coordinates, order=1, mode="constant", cval=0.0).astype(np.float32)


def draw_bias_coefficients(rng: np.random.Generator, strength: float) -> np.ndarray:
    """Draw the Legendre coefficients of a log bias field, with no constant term.

    The constant term is left out because the overall gain is drawn separately.
    """
    size = BIAS_DEGREE + 1
    coefficients = rng.normal(0.0, strength, size=(size, size, size))
    indices = np.indices((size, size, size)).sum(axis=0)
    coefficients[indices > BIAS_DEGREE] = 0.0
    coefficients[0, 0, 0] = 0.0
    return coefficients


def bias_field(coefficients: np.ndarray, grid: int) -> np.ndarray:
    """Return the multiplicative bias field ``exp(sum c_ijk P_i(x) P_j(y) P_k(z))`` on the grid.

    This is the field model of MONAI's ``RandBiasField``, evaluated with NumPy's Legendre
    series so that it is a pure function of the coefficients.
    """
    axis = np.linspace(-1.0, 1.0, grid)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.exp(legendre.legval3d(x, y, z, coefficients)).astype(np.float32)


def add_rician_noise(volume: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Return the magnitude of ``volume`` plus complex Gaussian noise of standard deviation ``sigma``.

    Magnitude MR images carry Rician noise: Gaussian in tissue, a positive floor in
    the background.
    """
    if sigma <= 0:
        return volume.astype(np.float32)
    real = volume + rng.normal(0.0, sigma, size=volume.shape)
    imaginary = rng.normal(0.0, sigma, size=volume.shape)
    return np.sqrt(real * real + imaginary * imaginary).astype(np.float32)
