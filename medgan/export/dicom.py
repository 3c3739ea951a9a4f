"""Writing synthetic volumes as de-identified single-frame DICOM series.

Every dataset is built from an allow-list of attributes below, never from a copied
source file, so nothing of a real patient can ride along in an attribute we forgot to
clear.  Each volume is its own synthetic patient, study and series with fresh UIDs.
Pixel data is stored uncompressed (Explicit VR Little Endian) as 16-bit integers whose
range is checked before the cast, so no value is clipped or wraps around.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
)
from pydicom.valuerep import DSfloat

from medgan import __version__
from medgan.errors import ConfigError
from medgan.export.geometry import slice_geometry
from medgan.export.uids import new_uid
from medgan.fileio import atomic_path

__all__ = ["SeriesOptions", "SeriesResult", "write_dicom_series", "slice_datasets", "new_series_result", "DEIDENTIFICATION_METHOD"]

logger = logging.getLogger(__name__)

# LO values are limited to 64 characters, so the method is written as several values.
DEIDENTIFICATION_METHOD = (
    "medgan synthetic image, no acquired data",
    "no source file copied, allow-listed attributes",
    "fresh UIDs",
)
# PS3.16 CID 7050 "De-identification Method": Basic Application Confidentiality Profile.
_DEID_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")

_SOP_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage}
_INT16 = np.iinfo(np.int16)
_UINT16 = np.iinfo(np.uint16)


@dataclass(frozen=True)
class SeriesOptions:
    """Descriptive attributes of a series, beyond geometry and pixels.

    Attributes:
        modality: "CT" (values in HU) or "MR" (non-negative arbitrary units).
        description: SeriesDescription, also used as StudyDescription.
        window: VOI window (lower, upper) written as WindowCenter/WindowWidth, if any.
        recognizable_features: RecognizableVisualFeatures; True unless faces were removed.
        series_number: SeriesNumber.
    """

    modality: str
    description: str = "medgan synthetic"
    window: tuple[float, float] | None = None
    recognizable_features: bool = True
    series_number: int = 1


@dataclass
class SeriesResult:
    """Files written for one series and the UIDs they share."""

    files: list[Path]
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    patient_id: str
    sop_instance_uids: list[str] = field(default_factory=list)


def _ds(value: float) -> DSfloat:
    """Return ``value`` as a DS that fits the 16-character limit."""
    return DSfloat(float(value), auto_format=True)


def _encode_pixels(array: np.ndarray, modality: str) -> tuple[np.ndarray, int]:
    """Round ``array`` to 16-bit integers; return the stored array and PixelRepresentation.

    CT is stored signed with slope 1 and intercept 0 (HU), MR unsigned.  The range is
    checked first, because a cast alone would wrap values around.
    """
    rounded = np.rint(np.asarray(array, dtype=np.float64))
    low, high = float(rounded.min()), float(rounded.max())
    if modality == "CT":
        if low < _INT16.min or high > _INT16.max:
            raise ConfigError(f"CT values {low}..{high} HU do not fit signed 16-bit storage ({_INT16.min}..{_INT16.max})")
        return rounded.astype("<i2"), 1
    if low < 0 or high > _UINT16.max:
        raise ConfigError(f"MR values {low}..{high} do not fit unsigned 16-bit storage (0..{_UINT16.max}); rescale them first")
    return rounded.astype("<u2"), 0


def _patient_study_series(ds: Dataset, options: SeriesOptions, uids: SeriesResult, now: dt.datetime) -> None:
    date = now.strftime("%Y%m%d")
    time = now.strftime("%H%M%S")
    # Patient: a synthetic patient with no characteristics of anyone (Type 2 left empty).
    ds.PatientName = "SYNTHETIC^" + uids.patient_id
    ds.PatientID = uids.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = list(DEIDENTIFICATION_METHOD)
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = _DEID_CODE
    ds.DeidentificationMethodCodeSequence = Sequence([code])

    # General Study: the study date is the export date; nothing was acquired.
    ds.StudyInstanceUID = uids.study_uid
    ds.StudyDate = date
    ds.StudyTime = time
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.StudyDescription = options.description

    # General Series.
    ds.Modality = options.modality
    ds.SeriesInstanceUID = uids.series_uid
    ds.SeriesNumber = options.series_number
    ds.SeriesDescription = options.description
    ds.SeriesDate = date
    ds.SeriesTime = time
    # Type 2C: no paired body part and no patient on a table, so both stay empty.
    ds.Laterality = ""
    ds.PatientPosition = ""

    # Frame of Reference: shared by every slice of the series.
    ds.FrameOfReferenceUID = uids.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""

    # General Equipment.
    ds.Manufacturer = "medgan"
    ds.ManufacturerModelName = "medgan conditional GAN"
    ds.SoftwareVersions = __version__


def _modality_module(ds: Dataset, options: SeriesOptions) -> None:
    if options.modality == "CT":
        ds.RescaleIntercept = _ds(0.0)
        ds.RescaleSlope = _ds(1.0)
        ds.RescaleType = "HU"
        # Type 2 acquisition attributes: there was no acquisition, so they stay empty.
        ds.KVP = None
        ds.AcquisitionNumber = None
        return
    # RM (research mode) is the one enumerated ScanningSequence value that claims no
    # real pulse sequence; the Type 2 timing attributes stay empty for the same reason.
    ds.ScanningSequence = "RM"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = ""
    ds.RepetitionTime = None
    ds.EchoTime = None
    ds.EchoTrainLength = None
    ds.SequenceName = "medgan synthetic"


def _check_inputs(array: np.ndarray, options: SeriesOptions) -> np.ndarray:
    if options.modality not in _SOP_CLASSES:
        raise ConfigError(f"DICOM export supports modality CT or MR, got {options.modality!r}")
    array = np.asarray(array)
    if array.ndim != 3:
        raise ConfigError(f"expected a 3D volume (X, Y, Z), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ConfigError("volume contains NaN or Inf values; DICOM integer storage cannot hold them")
    return array


def new_series_result() -> SeriesResult:
    """Return a :class:`SeriesResult` with fresh UIDs and a fresh synthetic patient id."""
    return SeriesResult(
        files=[],
        study_uid=new_uid(),
        series_uid=new_uid(),
        frame_of_reference_uid=new_uid(),
        patient_id="SYN-" + secrets.token_hex(6).upper(),
    )


def slice_datasets(
    array: np.ndarray,
    affine: np.ndarray,
    options: SeriesOptions,
    result: SeriesResult,
    now: dt.datetime,
) -> Iterator[Dataset]:
    """Yield one single-frame dataset per slice, in InstanceNumber order.

    For speed the same dataset object is yielded each time with only its UID, number,
    position and pixels changed; a caller that keeps the datasets must copy them.

    Raises:
        ConfigError: the modality is unknown, the affine is sheared, or the values do
            not fit 16-bit storage.
    """
    array = _check_inputs(array, options)
    geometry = slice_geometry(affine, array.shape[2])
    stored, pixel_representation = _encode_pixels(array, options.modality)
    sop_class = _SOP_CLASSES[options.modality]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDGAN_" + __version__.replace(".", "_")[:8]
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if options.modality == "CT" else "OTHER"]
    _patient_study_series(ds, options, result, now)

    # General Image.
    ds.PatientOrientation = ""
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "YES" if options.recognizable_features else "NO"
    ds.LossyImageCompression = "00"
    ds.DerivationDescription = "Synthetic image sampled from a generative model; no acquired data"

    # Image Plane.
    ds.ImageOrientationPatient = [_ds(value) for value in geometry.orientation]
    ds.PixelSpacing = [_ds(value) for value in geometry.pixel_spacing]
    ds.SliceThickness = _ds(geometry.slice_spacing)
    if options.modality == "MR":
        ds.SpacingBetweenSlices = _ds(geometry.slice_spacing)

    # Image Pixel.
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = array.shape[1], array.shape[0]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = pixel_representation
    _modality_module(ds, options)
    if options.window is not None:
        lower, upper = options.window
        ds.WindowCenter = _ds((lower + upper) / 2.0)
        ds.WindowWidth = _ds(upper - lower)

    for instance, k in enumerate(geometry.order, start=1):
        sop_uid = new_uid()
        meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = instance
        ds.ImagePositionPatient = [_ds(value) for value in geometry.positions[k]]
        # Pixel (row r, column c) is voxel (c, r, k).
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()  # (rows=Y, columns=X)
        yield ds


def write_dicom_series(
    array: np.ndarray,
    affine: np.ndarray,
    folder: str | Path,
    options: SeriesOptions,
    *,
    now: dt.datetime | None = None,
) -> SeriesResult:
    """Write a volume as one single-frame DICOM series, one file per slice.

    Args:
        array: volume of shape (X, Y, Z) in output units: HU for CT, non-negative
            arbitrary units for MR.
        affine: 4x4 voxel-to-RAS+ matrix; its axes must be orthogonal.
        folder: destination folder, created if missing; files are ``0001.dcm``, ...
            numbered along the slice normal.
        options: modality and descriptive attributes.
        now: time stamp for StudyDate/ContentDate; defaults to the current UTC time.

    Returns:
        The written files and the series' UIDs.

    Raises:
        ConfigError: the modality is unknown, the affine is sheared, or the values do
            not fit 16-bit storage.
    """
    _check_inputs(array, options)
    result = new_series_result()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for ds in slice_datasets(array, affine, options, result, now or dt.datetime.now(dt.timezone.utc)):
        path = folder / f"{int(ds.InstanceNumber):04d}.dcm"
        with atomic_path(path) as temporary:
            ds.save_as(temporary, enforce_file_format=True)
        result.files.append(path)
        result.sop_instance_uids.append(str(ds.SOPInstanceUID))
    logger.debug("wrote a %s series of %d slices", options.modality, len(result.files))
    return result
