"""Preprocessing profiles: one MONAI transform chain from a loaded scan to the model grid.

The chain, applied to a channel-first MetaTensor that carries the scan's affine:

1. intensity to [0, 2] on the original voxels, so percentiles are not biased by
   interpolation or padding.  CT uses the fixed HU window (``ScaleIntensityRange``,
   clipped), MR per-scan percentiles (``ScaleIntensityRangePercentiles``, clipped).
   A final ``ShiftIntensity`` moves the result to [-1, 1] after step 4 padded with zeros;
2. ``Orientation`` to RAS;
3. when ``antialias`` is on and an axis is finer than the output spacing, ``Resize``
   with area averaging to the smallest shape whose voxels are at least that spacing,
   so every input voxel contributes instead of aliasing;
4. ``SpatialResample`` (bilinear) onto a ``grid``-cubed RAS grid centred on the scan's
   centre, which resamples, crops and pads in one step; outside the scan it fills the
   background.  The spacing is ``spacing_mm`` under ``fit="crop_pad"``; under
   ``fit="resize"`` it is the scan's longest edge divided by ``grid``, so the whole scan
   fits and ``spacing_mm`` is only nominal.

Every constant comes from the profile, never from statistics of the cohort.  A
constant scan maps to the constant -1 instead of dividing by zero.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from typing import Any

import nibabel as nib
import numpy as np

from medgan.data.config import PreprocessConfig
from medgan.data.volume import MODALITIES, Volume
from medgan.errors import ConfigError, InputError

__all__ = [
    "preprocess_volume",
    "canonical_affine",
    "denormalize",
    "profile_record",
    "profile_digest",
    "target_affine",
    "MR_UNIT_MAX",
    "CHAIN_VERSION",
]

logger = logging.getLogger(__name__)

# Bump when the chain changes in a way the profile fields do not show.  It is part of
# every cache key, so old cache entries are never served for a new chain.
CHAIN_VERSION = 1
# denormalize maps MR to [0, MR_UNIT_MAX]: 0 is the low percentile, MR_UNIT_MAX the high one.
MR_UNIT_MAX = 1000.0
_BACKGROUND = -1.0


def _check_modality(modality: str | None) -> str:
    if modality not in MODALITIES:
        raise ConfigError(f"modality must be one of {', '.join(MODALITIES)} for preprocessing, got {modality!r}")
    return modality


def profile_record(config: PreprocessConfig, modality: str) -> dict[str, Any]:
    """Return the chain and every parameter as JSON-ready data, for run records and cache keys."""
    _check_modality(modality)
    import monai

    intensity: dict[str, Any]
    if modality == "CT":
        intensity = {"transform": "ScaleIntensityRange", "a_min": config.ct_window[0], "a_max": config.ct_window[1], "clip": True}
    else:
        intensity = {"transform": "ScaleIntensityRangePercentiles", "lower": config.mr_percentiles[0], "upper": config.mr_percentiles[1], "clip": True}
    return {
        "chain_version": CHAIN_VERSION,
        "monai_version": monai.__version__,
        "modality": modality,
        "steps": [
            dict(intensity, b_min=0.0, b_max=2.0),
            {"transform": "Orientation", "axcodes": "RAS"},
            {"transform": "Resize", "mode": "area", "enabled": config.antialias, "spatial_size": "ceil(shape * spacing / spacing_mm) on finer axes"},
            {"transform": "SpatialResample", "grid": config.grid, "fit": config.fit, "mode": "bilinear", "padding_mode": "zeros", "centre": "scan centre"},
            {"transform": "ShiftIntensity", "offset": _BACKGROUND},
        ],
        "config": config.model_dump(mode="json"),
    }


def profile_digest(config: PreprocessConfig, modality: str) -> str:
    """Return a SHA-256 of :func:`profile_record`, which changes with any part of the chain."""
    payload = json.dumps(profile_record(config, modality), sort_keys=True).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def canonical_affine(config: PreprocessConfig) -> np.ndarray:
    """Return the canonical voxel-to-RAS+ affine of a synthetic volume of this profile.

    The grid is axis-aligned in RAS+ with isotropic ``spacing_mm`` and its centre voxel at
    the world origin, so it reveals nothing about any patient's position.  Under
    ``fit="resize"`` the spacing is nominal, because each scan was scaled to fit.
    """
    spacing = config.spacing_mm
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (config.grid - 1) / 2.0
    return affine


def denormalize(array: np.ndarray, config: PreprocessConfig, modality: str) -> np.ndarray:
    """Map model output in [-1, 1] back to intensity units (float32, same shape).

    CT returns Hounsfield units through the profile's window, so -1 is the window's low
    end.  MR has no absolute unit, so it returns the normalised unit of the profile:
    0 at the low percentile and :data:`MR_UNIT_MAX` at the high one.  Values are clipped
    to [-1, 1] first, as the preprocessing clipped them.
    """
    _check_modality(modality)
    unit = (np.clip(np.asarray(array, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0
    if modality == "CT":
        low, high = config.ct_window
        return (low + unit * (high - low)).astype(np.float32)
    return (unit * MR_UNIT_MAX).astype(np.float32)


def _oriented_spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel spacing per axis after reorientation to RAS (axes may be permuted)."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    ornt = nib.io_orientation(affine)
    oriented = np.empty(3)
    for axis in range(3):
        oriented[int(ornt[axis, 0])] = spacing[axis]
    return oriented


def _oriented_shape(volume: Volume) -> list[int]:
    """Array shape after reorientation to RAS."""
    ornt = nib.io_orientation(volume.affine)
    shape = [0, 0, 0]
    for axis in range(3):
        shape[int(ornt[axis, 0])] = int(volume.array.shape[axis])
    return shape


def target_spacing(volume: Volume, config: PreprocessConfig) -> float:
    """Return the isotropic output spacing: ``spacing_mm``, or under ``fit="resize"`` the
    spacing at which the scan's longest edge fills the grid."""
    if config.fit == "crop_pad":
        return config.spacing_mm
    extent = np.array(volume.array.shape) * np.linalg.norm(volume.affine[:3, :3], axis=0)
    return float(extent.max() / config.grid)


def target_affine(volume: Volume, config: PreprocessConfig) -> np.ndarray:
    """Return the RAS output grid's affine: isotropic, centred on the scan's centre voxel position."""
    spacing = target_spacing(volume, config)
    centre = volume.affine @ np.array([*((np.array(volume.array.shape) - 1) / 2.0), 1.0])
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = centre[:3] - spacing * (config.grid - 1) / 2.0
    return affine


def _build_chain(volume: Volume, config: PreprocessConfig, modality: str) -> Any:
    from monai.transforms import (
        Compose,
        Orientation,
        Resize,
        ScaleIntensityRange,
        ScaleIntensityRangePercentiles,
        ShiftIntensity,
        SpatialResample,
    )

    # Intensities go to [0, 2] first so that SpatialResample's zero padding is the
    # background; the final shift moves everything to [-1, 1].
    steps: list[Any] = []
    if modality == "CT":
        low, high = config.ct_window
        steps.append(ScaleIntensityRange(a_min=low, a_max=high, b_min=0.0, b_max=2.0, clip=True))
    else:
        low, high = config.mr_percentiles
        steps.append(ScaleIntensityRangePercentiles(lower=low, upper=high, b_min=0.0, b_max=2.0, clip=True))
    steps.append(Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))))
    spacing_out = target_spacing(volume, config)
    if config.antialias:
        shape = _oriented_shape(volume)
        spacing = _oriented_spacing(volume.affine)
        # Average whole input voxels down to about the output spacing; the resampling
        # below then interpolates by a factor close to 1, which cannot alias.  Resize
        # keeps the extent, so the scan's centre does not move.
        reduced = [int(np.ceil(n * s / spacing_out)) if s < spacing_out else n for n, s in zip(shape, spacing)]
        if reduced != shape:
            steps.append(Resize(spatial_size=reduced, mode="area"))
    grid = config.grid
    steps.append(_ResampleTo(SpatialResample, target_affine(volume, config), (grid, grid, grid)))
    steps.append(ShiftIntensity(offset=_BACKGROUND))
    return Compose(steps)


class _ResampleTo:
    """SpatialResample onto a fixed grid; MONAI's SpatialResample takes the grid per call."""

    def __init__(self, spatial_resample: type, dst_affine: np.ndarray, spatial_size: tuple[int, int, int]) -> None:
        import torch

        self._resample = spatial_resample(mode="bilinear", padding_mode="zeros", align_corners=False)
        self._dst_affine = torch.as_tensor(dst_affine, dtype=torch.float64)
        self._spatial_size = spatial_size

    def __call__(self, image: Any) -> Any:
        return self._resample(image, dst_affine=self._dst_affine, spatial_size=self._spatial_size)


def preprocess_volume(volume: Volume, config: PreprocessConfig, modality: str) -> np.ndarray:
    """Run the profile's chain on a loaded scan.

    Args:
        volume: a scan from :func:`medgan.data.reader.load_volume`.
        config: the preprocessing profile.
        modality: ``"CT"`` or ``"MR"``; selects the intensity branch.

    Returns:
        float32 array of shape (1, G, G, G) in [-1, 1], G = ``config.grid``, in the RAS
        orientation of :func:`canonical_affine`.

    Raises:
        ConfigError: the modality is unknown.
        InputError: the volume contains NaN/Inf (load it with a non-finite policy first).
    """
    modality = _check_modality(modality)
    import torch
    from monai.data import MetaTensor

    if not np.all(np.isfinite(volume.array)):
        raise InputError("the volume contains NaN or Inf voxels; load it with load_volume, which rejects or replaces them")
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(volume.array)[None]), affine=torch.as_tensor(volume.affine))  # (1, X, Y, Z)
    with warnings.catch_warnings():
        # A constant scan makes MONAI warn about a zero intensity range and map it to
        # b_min; load_volume has already reported the constant volume.
        warnings.filterwarnings("ignore", message="Divide by zero", category=Warning)
        output = _build_chain(volume, config, modality)(image)
    array = np.asarray(output.detach().cpu().numpy() if hasattr(output, "detach") else output, dtype=np.float32)
    grid = config.grid
    if array.shape != (1, grid, grid, grid):
        raise RuntimeError(f"preprocessing produced shape {array.shape}, expected (1, {grid}, {grid}, {grid})")
    if not np.all(np.isfinite(array)):
        raise RuntimeError("preprocessing produced NaN or Inf; this is a bug in the chain")
    return np.clip(array, -1.0, 1.0)
