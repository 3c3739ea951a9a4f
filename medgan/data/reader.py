"""One entry point that loads a NIfTI file or a DICOM series into a checked :class:`Volume`."""

from __future__ import annotations

import logging
from pathlib import Path

from medgan.data.dicom_series import read_dicom
from medgan.data.intensity import apply_nonfinite_policy, check_intensity
from medgan.data.nifti_reader import is_nifti_path, read_nifti
from medgan.data.volume import MODALITIES, Volume
from medgan.errors import ConfigError, InputError

__all__ = ["load_volume"]

logger = logging.getLogger(__name__)

# Formats that would otherwise be tried as DICOM and fail with a confusing message.
_OTHER_FORMATS = (".img", ".hdr", ".mha", ".mhd", ".nrrd", ".nhdr", ".mgz", ".mgh", ".png", ".jpg", ".tif", ".tiff", ".npy", ".npz")


def load_volume(
    path: str | Path,
    *,
    allow_identifying: bool = False,
    nonfinite: str = "reject",
    nonfinite_value: float = 0.0,
    modality: str | None = None,
) -> Volume:
    """Load one scan: a ``.nii``/``.nii.gz`` file, a DICOM series folder or one enhanced DICOM file.

    Args:
        path: the scan.
        allow_identifying: also load localizers, Secondary Capture and images with
            BurnedInAnnotation YES, whose pixels may show identifying text.
        nonfinite: ``"reject"`` NaN/Inf voxels with an error, or ``"replace"`` them.
        nonfinite_value: value written into NaN/Inf voxels under ``"replace"``.
        modality: ``"CT"`` or ``"MR"``; sets the modality of NIfTI files and must match
            the Modality tag of DICOM.

    Returns:
        a Volume whose array is float32 (X, Y, Z) and whose affine maps voxels to RAS+ mm.

    Raises:
        InputError: the scan is missing, unreadable or fails one of the geometry or
            intensity rules; the message names the file.
        ConfigError: ``modality`` or ``nonfinite`` has an unknown value.
    """
    source = Path(path)
    if modality is not None:
        modality = modality.upper()
        if modality not in MODALITIES:
            raise ConfigError(f"modality {modality!r} is not one of {', '.join(MODALITIES)}")
    if not source.exists():
        raise InputError(f"{source} does not exist; pass a .nii/.nii.gz file or a DICOM series folder")
    if source.is_file() and source.name.lower().endswith(_OTHER_FORMATS):
        raise InputError(
            f"{source}: this image format is not read by medgan; convert it to NIfTI (.nii.gz), "
            "for example with SimpleITK or nibabel, or pass the DICOM series folder"
        )
    if source.is_file() and is_nifti_path(source):
        volume = read_nifti(source)
        volume.modality = modality
    elif source.is_dir() or source.is_file():
        volume = read_dicom(source, allow_identifying=allow_identifying, modality=modality)
    else:
        raise InputError(f"{source} is neither a file nor a folder")
    value_range = (float(volume.array.min()), float(volume.array.max()))
    volume.array, replaced = apply_nonfinite_policy(volume.array, source, nonfinite, nonfinite_value, value_range)
    if replaced:
        value_range = (float(volume.array.min()), float(volume.array.max()))
    volume.warnings.extend(replaced)
    volume.warnings.extend(check_intensity(volume.array, volume.modality, value_range))
    return volume
