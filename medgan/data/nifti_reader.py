"""NIfTI reading with the standard's geometry and scaling rules enforced.

nibabel does the parsing; this module adds what nibabel leaves to the caller:

* the affine follows the NIfTI-1 precedence: the sform when ``sform_code > 0``, else the
  qform when ``qform_code > 0``, else ``diag(pixdim)`` with a warning (the standard's
  "method 1", which has no world frame);
* both transforms set but more than :data:`XFORM_TOLERANCE_MM` apart gives a warning;
* ``scl_slope`` of 0, NaN or Inf means "no scaling" (NIfTI-1 header comments), and the
  scaling is applied exactly once, here, to the raw stored values;
* only one 3D volume per file: trailing singleton dimensions are dropped, anything
  else with a 4th or 5th dimension above 1 is rejected with the shape;
* gzip is recognised by its magic bytes, not by the name, and truncated files are
  rejected when read instead of failing later inside a data loader.
"""

from __future__ import annotations

import gzip
import io
import logging
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from medgan.data.volume import Volume
from medgan.errors import InputError

__all__ = ["read_nifti", "is_nifti_path", "XFORM_TOLERANCE_MM"]

logger = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
# Largest distance, over the 8 corners of the volume, between the positions the sform
# and the qform give before they count as disagreeing.  The qform stores rotations as
# float32 quaternions, which alone moves corners by about 0.01 mm on a 256 mm volume.
XFORM_TOLERANCE_MM = 0.1


def is_nifti_path(path: Path) -> bool:
    """Return True when the name ends in ``.nii`` or ``.nii.gz`` (any case)."""
    name = path.name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def _read_bytes(path: Path) -> tuple[bytes, list[str]]:
    """Return the uncompressed file content, deciding on gzip by the magic bytes, not the name."""
    warnings: list[str] = []
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from None
    named_gzip = path.name.lower().endswith(".gz")
    is_gzip = data[:2] == _GZIP_MAGIC
    if named_gzip and not is_gzip:
        warnings.append("the file is not gzip-compressed despite its .gz name; it was read as plain NIfTI")
    elif is_gzip and not named_gzip:
        warnings.append("the file is gzip-compressed despite its .nii name; it was decompressed")
    if is_gzip:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as error:
            raise InputError(f"{path}: the gzip stream is truncated or corrupt ({error}); copy the file again") from None
    return data, warnings


def _load_image(path: Path) -> tuple[nib.Nifti1Image, list[str]]:
    """Parse the header and wrap the data of ``path``; an invalid scl_inter is set to 0 first.

    nibabel refuses a file whose scl_slope is valid but whose scl_inter is NaN, so the
    intercept is repaired in the header bytes (with a warning) before parsing.
    """
    data, warnings = _read_bytes(path)
    header_size = 0
    for byteorder in ("little", "big"):
        header_size = int.from_bytes(data[:4], byteorder)
        if header_size in (348, 540) and len(data) >= header_size:
            break
    else:
        raise InputError(f"{path}: not a NIfTI file (no 348- or 540-byte header at its start); check that it is .nii or .nii.gz")
    image_class, header_class = (nib.Nifti1Image, nib.Nifti1Header) if header_size == 348 else (nib.Nifti2Image, nib.Nifti2Header)
    try:
        header = header_class.from_fileobj(io.BytesIO(data[:header_size]))
    except Exception as error:  # nibabel raises several types for a bad header
        raise InputError(f"{path}: not a readable NIfTI file ({type(error).__name__}: {error})") from None
    slope = float(header["scl_slope"])
    inter = float(header["scl_inter"])
    if slope != 0.0 and np.isfinite(slope) and not np.isfinite(inter):
        warnings.append(f"scl_inter is {inter} while scl_slope is {slope}; the intercept was taken as 0")
        header["scl_inter"] = 0.0
        data = header.binaryblock + data[header_size:]
    try:
        image = image_class.from_bytes(data)
    except Exception as error:
        raise InputError(f"{path}: not a readable NIfTI file ({type(error).__name__}: {error})") from None
    return image, warnings


def _read_raw(image: nib.Nifti1Image, path: Path) -> np.ndarray:
    """Read every stored value now, unscaled, so a short file fails here and not mid-training."""
    try:
        raw = np.asanyarray(image.dataobj.get_unscaled())
    except (EOFError, zlib.error) as error:
        raise InputError(f"{path}: the gzip stream is truncated ({error}); copy the file again") from None
    except (OSError, ValueError) as error:
        raise InputError(
            f"{path}: the data section is shorter than the header's shape {image.shape} "
            f"and type {image.get_data_dtype()} require ({error}); the file is truncated"
        ) from None
    if raw.dtype.kind not in "iuf":
        raise InputError(f"{path}: voxel type {raw.dtype} is not a single grey value; convert it to a scalar image")
    return raw


def _squeeze_to_3d(raw: np.ndarray, path: Path) -> np.ndarray:
    """Drop trailing singleton dimensions; reject time series and multi-channel files."""
    shape = raw.shape
    while raw.ndim > 3 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if raw.ndim != 3:
        raise InputError(
            f"{path}: expected one 3D volume, got shape {shape}; medgan trains on single-channel 3D scans, "
            "so extract the volume you mean (for example with fslroi or nibabel) into its own file"
        )
    if min(raw.shape) < 2:
        raise InputError(f"{path}: shape {shape} is a single slice; medgan needs a 3D volume with at least 2 voxels on each axis")
    return raw


def _scale(raw: np.ndarray, image: nib.Nifti1Image) -> np.ndarray:
    """Apply scl_slope/scl_inter once to the unscaled values.

    nibabel's array proxy stores the scaling after the NIfTI-1 rule (slope 0 or NaN
    becomes slope 1, intercept 0) and resets the header fields to NaN, so the proxy's
    values are the ones to use.
    """
    slope = float(image.dataobj.slope)
    inter = float(image.dataobj.inter)
    if slope == 1.0 and inter == 0.0:
        return raw.astype(np.float32)
    return (raw.astype(np.float64) * slope + inter).astype(np.float32)


def _corners(shape: tuple[int, ...]) -> np.ndarray:
    # (4, 8): homogeneous voxel coordinates of the 8 corner voxels
    i, j, k = (np.array([0, n - 1]) for n in shape[:3])
    grid = np.array(np.meshgrid(i, j, k, indexing="ij")).reshape(3, -1)
    return np.vstack([grid, np.ones((1, grid.shape[1]))])


def _affine(header: nib.Nifti1Header, shape: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    """Choose the affine by the NIfTI precedence and report disagreements."""
    warnings: list[str] = []
    sform_code = int(header["sform_code"])
    qform_code = int(header["qform_code"])
    sform = header.get_sform() if sform_code > 0 else None
    qform = header.get_qform() if qform_code > 0 else None
    if sform is not None and qform is not None:
        corners = _corners(shape)
        distance = float(np.max(np.linalg.norm((sform @ corners - qform @ corners)[:3], axis=0)))
        if distance > XFORM_TOLERANCE_MM:
            warnings.append(
                f"sform (code {sform_code}) and qform (code {qform_code}) disagree by up to {distance:.2f} mm; "
                "the sform was used, as the NIfTI standard requires"
            )
    if sform is not None:
        affine = sform
    elif qform is not None:
        affine = qform
    else:
        zooms = [float(z) for z in header.get_zooms()[:3]]
        if any(not np.isfinite(z) or z <= 0 for z in zooms):
            raise InputError(f"pixdim {zooms} is not a valid voxel size and no sform or qform is set")
        affine = np.diag(zooms + [1.0])
        warnings.append(
            "sform_code and qform_code are both 0, so the file has no world orientation; "
            f"voxel size {zooms} mm was used with an identity orientation"
        )
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"the affine {np.round(affine, 4).tolist()} is singular")
    return np.asarray(affine, dtype=np.float64), warnings


def read_nifti(path: Path) -> Volume:
    """Read a NIfTI-1 or NIfTI-2 file into a :class:`Volume` (modality unset).

    Raises:
        InputError: the file is unreadable, truncated, not 3D, not scalar, or has no
            usable geometry.
    """
    image, warnings = _load_image(path)
    header = image.header
    raw = _squeeze_to_3d(_read_raw(image, path), path)
    array = _scale(raw, image)
    try:
        affine, affine_warnings = _affine(header, array.shape)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    warnings += affine_warnings
    for message in warnings:
        logger.warning("%s", message)
    return Volume(array=array, affine=affine, modality=None, warnings=warnings)
