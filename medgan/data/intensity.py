"""Intensity sanity checks applied to every loaded volume.

NaN or Inf voxels are invisible in most viewers, but a single one turns a normalised
volume, a DP-clipped gradient or a metric into NaN.  They are counted at load time and
either rejected or replaced by a value the user chose, never passed on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from medgan.errors import ConfigError, InputError

__all__ = ["NONFINITE_POLICIES", "apply_nonfinite_policy", "check_intensity"]

logger = logging.getLogger(__name__)

NONFINITE_POLICIES = ("reject", "replace")

# Values outside this range are not Hounsfield units of any real tissue or metal
# implant; they point at a missing or doubled rescale.
_CT_PLAUSIBLE_HU = (-2048.0, 32767.0)


def apply_nonfinite_policy(
    array: np.ndarray, source: Path, policy: str, value: float, value_range: tuple[float, float] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Return ``array`` with NaN/Inf voxels handled by ``policy``, and the warnings raised.

    Args:
        array: float volume; modified in place when voxels are replaced.
        source: file or folder the volume came from, named in the error.
        policy: ``"reject"`` raises, ``"replace"`` writes ``value`` into every
            non-finite voxel and records how many were replaced.
        value: replacement value, in the volume's own intensity units.
        value_range: ``(array.min(), array.max())`` when the caller has it, which saves
            two passes over a large volume.

    Raises:
        ConfigError: the policy is unknown or the replacement is not finite.
        InputError: the volume has non-finite voxels and the policy is ``"reject"``,
            or every voxel is non-finite.
    """
    if policy not in NONFINITE_POLICIES:
        raise ConfigError(f"nonfinite policy {policy!r} is not one of {', '.join(NONFINITE_POLICIES)}")
    if not np.isfinite(value):
        raise ConfigError(f"nonfinite_value must be a finite number, got {value}")
    low, high = value_range if value_range is not None else (float(array.min()), float(array.max()))
    if np.isfinite(low) and np.isfinite(high):
        # min and max are NaN when any voxel is NaN and infinite when any is infinite.
        # Two reductions are cheaper than a full boolean mask on large volumes.
        return array, []
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if count == 0:
        return array, []
    n_nan = int(np.isnan(array).sum())
    detail = f"{count} non-finite voxels ({n_nan} NaN, {count - n_nan} Inf) of {array.size}"
    if count == array.size:
        raise InputError(f"{source}: all {array.size} voxels are NaN or Inf; the file contains no image data")
    if policy == "reject":
        raise InputError(
            f"{source}: {detail}; fix the file, or replace them with a fixed value: data.nonfinite: replace "
            "(and data.nonfinite_value) in a pipeline, --nonfinite replace for inspect and validate"
        )
    array[bad] = value
    message = f"replaced {detail} with {value}"
    logger.warning("%s", message)
    return array, [message]


def check_intensity(array: np.ndarray, modality: str | None, value_range: tuple[float, float] | None = None) -> list[str]:
    """Return warnings about an implausible intensity range; the array is not changed.

    The warnings state the rule, never the voxel values, because they are logged and
    stored with prepared scans.

    A constant volume is allowed (preprocessing maps it to a finite constant) but is
    reported, because it usually means a blank export.  A CT whose values never go below
    0 usually lost its RescaleIntercept, and values beyond the plausible Hounsfield range
    point at a rescale applied twice or not at all.
    """
    warnings: list[str] = []
    low, high = value_range if value_range is not None else (float(array.min()), float(array.max()))
    if low == high:
        warnings.append(f"the volume is constant ({array.size} voxels of one value)")
    if modality == "CT":
        if low >= 0.0:
            warnings.append("CT values never go below 0 HU, so air is missing or RescaleIntercept was not applied")
        if low < _CT_PLAUSIBLE_HU[0] or high > _CT_PLAUSIBLE_HU[1]:
            warnings.append(
                f"CT values fall outside the plausible {_CT_PLAUSIBLE_HU[0]:.0f}..{_CT_PLAUSIBLE_HU[1]:.0f} HU; "
                "check the rescale slope and intercept"
            )
    return warnings
