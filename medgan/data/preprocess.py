"""Preprocessing profiles: one MONAI transform chain from a loaded scan to the model grid.

The chain, applied to a channel-first MetaTensor that carries the scan's affine:

1. intensity to [-1, 1] on the original voxels, so percentiles are not biased by
   interpolation or padding: CT by the fixed HU window (``ScaleIntensityRange``, clipped),
   MR by per-scan percentiles (``ScaleIntensityRangePercentiles``, clipped);
2. ``Orientation`` to RAS;
3. ``GaussianSmooth`` with sigma ``(factor - 1) / 2`` voxels per axis before
   downsampling (the anti-aliasing rule scikit-image uses), when ``antialias`` is on,
   between a replicating ``BorderPad`` and a ``SpatialCrop`` so edges stay unchanged;
4. ``Spacing`` to isotropic ``spacing_mm`` (bilinear);
5. ``fit="crop_pad"``: ``ResizeWithPadOrCrop`` to ``grid`` around the centre, padding
   with -1 (the background after step 1); ``fit="resize"``: pad to a cube, then
   ``Resize`` (area averaging) to ``grid``.

Every constant comes from the profile, never from statistics of the cohort.  A
constant scan maps to the constant -1 instead of dividing by zero.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
    "MR_UNIT_MAX",
    "CHAIN_VERSION",
]

logger = logging.getLogger(__name__)

# Bump when the chain changes in a way the profile fields do not show; it is part of
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
            dict(intensity, b_min=-1.0, b_max=1.0),
            {"transform": "Orientation", "axcodes": "RAS"},
            {"transform": "GaussianSmooth", "enabled": config.antialias, "sigma": "(factor - 1) / 2 voxels"},
            {"transform": "Spacing", "pixdim": config.spacing_mm, "mode": "bilinear", "padding_mode": "border"},
            {"transform": "ResizeWithPadOrCrop" if config.fit == "crop_pad" else "SpatialPad+Resize(area)", "spatial_size": config.grid, "pad_value": _BACKGROUND},
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
    the world origin, so it says nothing about any patient's position.  Under
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


def _build_chain(volume: Volume, config: PreprocessConfig, modality: str) -> Any:
    from monai.transforms import (
        Compose,
        GaussianSmooth,
        Orientation,
        Resize,
        ResizeWithPadOrCrop,
        ScaleIntensityRange,
        ScaleIntensityRangePercentiles,
        BorderPad,
        Spacing,
        SpatialCrop,
        SpatialPad,
    )

    steps: list[Any] = []
    if modality == "CT":
        low, high = config.ct_window
        steps.append(ScaleIntensityRange(a_min=low, a_max=high, b_min=-1.0, b_max=1.0, clip=True))
    else:
        low, high = config.mr_percentiles
        steps.append(ScaleIntensityRangePercentiles(lower=low, upper=high, b_min=-1.0, b_max=1.0, clip=True))
    steps.append(Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))))
    if config.antialias:
        factors = config.spacing_mm / _oriented_spacing(volume.affine)
        sigma = [max(0.0, (factor - 1.0) / 2.0) for factor in factors]
        if max(sigma) > 0:
            steps.append(_EdgeSafeSmooth(sigma, GaussianSmooth, BorderPad, SpatialCrop))
    steps.append(Spacing(pixdim=config.spacing_mm, mode="bilinear", padding_mode="border"))
    if config.fit == "crop_pad":
        steps.append(ResizeWithPadOrCrop(spatial_size=config.grid, mode="constant", value=_BACKGROUND))
    else:
        steps.append(_PadToCube(SpatialPad))
        steps.append(Resize(spatial_size=(config.grid,) * 3, mode="area"))
    return Compose(steps)


class _EdgeSafeSmooth:
    """GaussianSmooth with replicated borders.

    MONAI's GaussianSmooth convolves with zero padding, which pulls every edge voxel
    towards 0 (mid-grey after intensity scaling) and draws a bright frame around the
    background.  Padding by the kernel's reach with edge values first, then cropping
    back, leaves a constant region constant.
    """

    def __init__(self, sigma: list[float], smooth: type, border_pad: type, crop: type) -> None:
        # GaussianSmooth truncates its kernel at 4 sigma.
        self._margins = [int(np.ceil(4.0 * value)) for value in sigma]
        self._pad = border_pad(spatial_border=[margin for margin in self._margins for _ in (0, 1)], mode="replicate")
        self._smooth = smooth(sigma=sigma)
        self._crop = crop

    def __call__(self, image: Any) -> Any:
        shape = image.shape[1:]
        smoothed = self._smooth(self._pad(image))
        start = self._margins
        end = [margin + size for margin, size in zip(self._margins, shape)]
        return self._crop(roi_start=start, roi_end=end)(smoothed)


class _PadToCube:
    """Pad a (C, X, Y, Z) image symmetrically to a cube of its longest edge with the background."""

    def __init__(self, spatial_pad: type) -> None:
        self._spatial_pad = spatial_pad

    def __call__(self, image: Any) -> Any:
        edge = int(max(image.shape[1:]))
        return self._spatial_pad(spatial_size=edge, method="symmetric", mode="constant", value=_BACKGROUND)(image)


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
        InputError: the volume holds NaN/Inf (load it with a non-finite policy first).
    """
    modality = _check_modality(modality)
    import torch
    from monai.data import MetaTensor

    if not np.all(np.isfinite(volume.array)):
        raise InputError("the volume holds NaN or Inf voxels; load it with load_volume, which rejects or replaces them")
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(volume.array)[None]), affine=torch.as_tensor(volume.affine))  # (1, X, Y, Z)
    output = _build_chain(volume, config, modality)(image)
    array = np.asarray(output.detach().cpu().numpy() if hasattr(output, "detach") else output, dtype=np.float32)
    grid = config.grid
    if array.shape != (1, grid, grid, grid):
        raise RuntimeError(f"preprocessing produced shape {array.shape}, expected (1, {grid}, {grid}, {grid})")
    if not np.all(np.isfinite(array)):
        raise RuntimeError("preprocessing produced NaN or Inf; this is a bug in the chain")
    return np.clip(array, -1.0, 1.0)
