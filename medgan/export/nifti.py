"""Writing NIfTI files with an explicit dtype and consistent qform and sform.

nibabel picks a scale factor on its own when float data meets an integer header, and an
image built from an array and an affine alone gets qform code 0; both have broken other
tools' outputs.  Here the dtype is chosen by the caller, the scaling is fixed to
slope 1 / intercept 0, and both transforms carry the same matrix with code 2
(aligned to an anatomical reference), because synthetic volumes have no scanner frame.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from medgan.errors import ConfigError
from medgan.fileio import atomic_path

__all__ = ["save_nifti", "ALLOWED_DTYPES"]

ALLOWED_DTYPES = (np.float32, np.int16, np.uint8)
_XFORM_ALIGNED_ANAT = 2


def save_nifti(array: np.ndarray, affine: np.ndarray, path: str | Path, dtype: type = np.float32, description: str = "medgan synthetic") -> Path:
    """Write a 3D volume to ``path`` (``.nii`` or ``.nii.gz``) atomically.

    Args:
        array: volume of shape (X, Y, Z).
        affine: 4x4 voxel-to-RAS+ matrix in millimetres.
        path: destination file.
        dtype: on-disk data type; float32, int16 or uint8. int64 is refused because
            several viewers cannot open it.
        description: text for the header's ``descrip`` field (at most 79 bytes).

    Raises:
        ConfigError: the dtype is not allowed, or integer output would clip the values.
    """
    dtype = np.dtype(dtype).type
    if dtype not in ALLOWED_DTYPES:
        raise ConfigError(f"NIfTI dtype {np.dtype(dtype).name} is not supported; use one of float32, int16, uint8")
    array = np.asarray(array)
    if array.ndim != 3:
        raise ConfigError(f"expected a 3D volume (X, Y, Z), got shape {array.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ConfigError(f"affine must be an invertible 4x4 matrix, got {affine.tolist()}")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        rounded = np.rint(array)
        if rounded.min() < info.min or rounded.max() > info.max:
            raise ConfigError(
                f"values {float(array.min())}..{float(array.max())} do not fit {np.dtype(dtype).name}; use float32"
            )
        data = rounded.astype(dtype)
    else:
        data = array.astype(dtype)
    image = nib.Nifti1Image(data, affine)
    header = image.header
    header.set_data_dtype(dtype)
    header.set_slope_inter(1.0, 0.0)
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = description.encode("ascii", "replace")[:79]
    image.set_qform(affine, code=_XFORM_ALIGNED_ANAT)
    image.set_sform(affine, code=_XFORM_ALIGNED_ANAT)
    path = Path(path)
    with atomic_path(path) as temporary:
        nib.save(image, str(temporary))
    return path
