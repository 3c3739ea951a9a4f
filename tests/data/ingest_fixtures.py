"""Builders of tiny DICOM and NIfTI fixtures, written into each test's tmp_path.

The DICOM files carry a fake patient name and id so tests can check that nothing
identifying leaks into volumes or caches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def make_slice(
    pixels: np.ndarray,
    position: tuple[float, float, float] | None,
    *,
    orientation: tuple[float, ...] | None = AXIAL,
    pixel_spacing: tuple[float, float] | None = (1.0, 1.0),
    instance: int = 1,
    series_uid: str = "1.2.3.4.5",
    sop_class: str = CTImageStorage,
    modality: str = "CT",
    slope: float | None = 1.0,
    intercept: float | None = 0.0,
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    **extra: Any,
) -> Dataset:
    """Return a single-frame image dataset; ``pixels`` is (rows, columns), int16 or uint16."""
    pixels = np.asarray(pixels)

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    sop_uid = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.ImageType = list(image_type)
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN0042"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance

    if position is not None:
        ds.ImagePositionPatient = [float(value) for value in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(value) for value in orientation]
    if pixel_spacing is not None:
        ds.PixelSpacing = [float(value) for value in pixel_spacing]
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    return ds


def write(ds: Dataset, path: Path) -> Path:
    """Save with the 128-byte preamble and file meta."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    folder: Path,
    volume: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    orientation: tuple[float, ...] = AXIAL,
    positions: list[tuple[float, float, float]] | None = None,
    names: list[str] | None = None,
    instances: list[int] | None = None,
    **kwargs: Any,
) -> list[Path]:
    """Write ``volume`` (X, Y, Z) as one file per slice k, placed along the orientation's normal.

    Slice k stores ``volume[:, :, k].T`` so that voxel (i, j, k) sits at
    origin + i*col_spacing*row_cosine + j*row_spacing*col_cosine + k*dz*normal (LPS).
    """
    row_cosine = np.array(orientation[:3])
    column_cosine = np.array(orientation[3:])
    normal = np.cross(row_cosine, column_cosine)
    paths = []
    for k in range(volume.shape[2]):
        position = positions[k] if positions is not None else tuple(np.array(origin) + k * spacing[2] * normal)
        ds = make_slice(
            volume[:, :, k].T,
            position,
            orientation=orientation,
            pixel_spacing=(spacing[1], spacing[0]),
            instance=instances[k] if instances is not None else k + 1,
            **kwargs,
        )
        name = names[k] if names is not None else f"IM{k:04d}.dcm"
        paths.append(write(ds, folder / name))
    return paths


def lps_to_ras(point: np.ndarray) -> np.ndarray:
    return np.array([-point[0], -point[1], point[2]])


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Write a NIfTI file; nibabel sets sform and qform codes from the affine (identity if None)."""
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path
