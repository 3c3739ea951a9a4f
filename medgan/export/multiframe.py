"""Writing a synthetic volume as one enhanced (multi-frame) DICOM file.

The single-frame datasets of :mod:`medgan.export.dicom` are converted with highdicom's
Legacy Converted Enhanced CT/MR Image classes, which fill the shared and per-frame
functional groups (pixel measures, plane orientation and position, VOI window,
rescale) from the single-frame attributes.  highdicom is an optional dependency; the
single-frame series is the default DICOM output.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from pathlib import Path

import numpy as np

from medgan.errors import ConfigError
from medgan.export.dicom import SeriesOptions, SeriesResult, new_series_result, slice_datasets
from medgan.export.uids import new_uid
from medgan.fileio import atomic_path

__all__ = ["write_dicom_enhanced", "enhanced_available"]

logger = logging.getLogger(__name__)


def enhanced_available() -> bool:
    """Return True when highdicom, which builds the enhanced objects, is installed."""
    try:
        import highdicom  # noqa: F401
    except ImportError:
        return False
    return True


def write_dicom_enhanced(
    array: np.ndarray,
    affine: np.ndarray,
    path: str | Path,
    options: SeriesOptions,
    *,
    now: dt.datetime | None = None,
) -> SeriesResult:
    """Write a volume as one Legacy Converted Enhanced CT or MR Image file.

    Args:
        array: volume of shape (X, Y, Z) in output units (HU for CT, MR units).
        affine: 4x4 voxel-to-RAS+ matrix with orthogonal axes.
        path: destination ``.dcm`` file.
        options: modality and descriptive attributes; MR needs a ``window`` because
            the enhanced objects require one per frame.
        now: time stamp for dates; defaults to the current UTC time.

    Raises:
        ConfigError: highdicom is missing, the MR window is missing, or the volume is
            invalid for DICOM (see :func:`medgan.export.dicom.write_dicom_series`).
    """
    try:
        from highdicom.legacy import LegacyConvertedEnhancedCTImage, LegacyConvertedEnhancedMRImage
    except ImportError:
        raise ConfigError("enhanced multi-frame DICOM needs highdicom; install it (pip install highdicom) or use format dicom") from None
    if options.window is None:
        raise ConfigError("enhanced multi-frame DICOM needs a VOI window in the series options (FrameVOILUT is Type 1)")
    result = new_series_result()
    frames = [copy.deepcopy(ds) for ds in slice_datasets(array, affine, options, result, now or dt.datetime.now(dt.timezone.utc))]
    converter = LegacyConvertedEnhancedCTImage if options.modality == "CT" else LegacyConvertedEnhancedMRImage
    sop_uid = new_uid()
    image = converter(frames, series_instance_uid=result.series_uid, series_number=options.series_number, sop_instance_uid=sop_uid, instance_number=1)
    # Type 2C attributes the conversion drops: no paired body part, no patient on a table.
    image.Laterality = ""
    image.PatientPosition = ""
    # NOTE: ConversionSourceAttributesSequence and ReferencedSeriesSequence, which the
    # IOD requires, name the in-memory single frames; those are fresh UIDs of files
    # never written, so the references dangle but point at nothing real.
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        image.save_as(temporary, enforce_file_format=True)
    result.files.append(path)
    result.sop_instance_uids.append(sop_uid)
    logger.debug("wrote an enhanced %s image of %d frames", options.modality, len(frames))
    return result
