"""Reading single DICOM files into frames: parsing, screening and pixel decoding.

pydicom parses and decodes; this module decides which files are image slices at all.
A file is one of:

* an image: every frame becomes a :class:`Frame` with its own geometry and rescale;
* a non-image object (DICOMDIR, structured report, presentation state, anything
  without pixel data): skipped with an info log naming its SOP class;
* junk (not DICOM, or a forced parse that lacks the tags of an image): skipped with a
  warning, never turned into a slice;
* a file without the 128-byte preamble and ``DICM`` marker that still parses as a
  complete image: read, with a warning.

Enhanced (multi-frame) objects take their geometry from the functional groups; a frame
without position, orientation or pixel spacing is an error, never an identity affine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ImplicitVRLittleEndian

from medgan.errors import InputError

__all__ = ["Frame", "ScreenedFile", "screen_file", "decode_frames", "SECONDARY_CAPTURE_SOP_CLASSES"]

logger = logging.getLogger(__name__)

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
# Secondary Capture Image Storage and its multi-frame variants: screenshots, scanned
# documents and burned-in reports, which often show patient text in the pixels.
SECONDARY_CAPTURE_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.5.1.4.1.1.7.1",
        "1.2.840.10008.5.1.4.1.1.7.2",
        "1.2.840.10008.5.1.4.1.1.7.3",
        "1.2.840.10008.5.1.4.1.1.7.4",
    }
)
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_LOCALIZER_TYPES = {"LOCALIZER", "SCOUT", "TOPOGRAM", "SURVEY"}


@dataclass
class Frame:
    """One 2D image plane with everything needed to place and rescale it.

    ``position`` and ``orientation`` are in DICOM LPS millimetres, as stored.
    ``pixel_spacing`` is (row spacing, column spacing), as in PixelSpacing.
    Missing geometry is None, so the series check can name the file.
    """

    file: Path
    frame_index: int
    multi_frame: bool
    rows: int
    columns: int
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float
    rescale_defaulted: bool
    echo: str
    temporal: str
    acquisition: str
    stack: str
    instance_number: int | None
    padding_value: int | None = None


@dataclass
class ScreenedFile:
    """A parsed image file with its frames and the facts the series checks need."""

    path: Path
    dataset: Dataset
    series_uid: str
    series_number: str
    sop_class: str
    modality: str
    frames: list[Frame]
    identifying_reason: str | None
    preamble_missing: bool
    compressed: bool
    transfer_syntax: UID


def _text(dataset: Dataset, keyword: str) -> str:
    value = dataset.get(keyword)
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(str(item) for item in value)
    return str(value).strip()


def _numbers(dataset: Dataset | None, keyword: str) -> list[float] | None:
    """Return the numbers of a DS or IS element, or None when it is absent, empty or not numeric.

    Raw text values are parsed here instead of through pydicom's DS type, whose
    per-value validation made up a third of the load time of a 48-slice CT series.
    """
    if dataset is None:
        return None
    element = dataset.get_item(keyword)
    if element is None:
        return None
    value = element.value
    if value is None:
        return None
    if isinstance(value, bytes):
        parts: list[object] = list(value.decode("ascii", "replace").strip(" \0").split("\\"))
    elif isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        parts = list(value)
    else:
        parts = [value]
    try:
        numbers = [float(str(part).strip()) for part in parts]
    except ValueError:
        return None
    return numbers if numbers else None


def _floats(values: list[float] | None, count: int) -> np.ndarray | None:
    """Return ``values`` as an array when there are exactly ``count`` finite numbers, else None."""
    if values is None or len(values) != count:
        return None
    numbers = np.array(values, dtype=np.float64)
    return numbers if np.all(np.isfinite(numbers)) else None


def _parse(path: Path) -> tuple[Dataset | None, bool]:
    """Return (dataset, preamble_missing), or (None, False) for a file that is not DICOM."""
    try:
        return pydicom.dcmread(path), False
    except InvalidDicomError:
        pass
    except Exception as error:
        # The file has the DICM marker, so it is meant to be part of the series.  Skipping
        # it could silently drop the first or last slice.
        raise InputError(f"{path}: DICOM file is corrupt or truncated ({type(error).__name__}: {error}); copy it again or remove it") from None
    try:
        dataset = pydicom.dcmread(path, force=True)
        # Touch every element: a forced parse of random bytes usually fails here.
        for _ in dataset.iterall():
            pass
    except Exception:
        return None, False
    return dataset, True


def _is_plausible_image(dataset: Dataset) -> bool:
    """True when a forced parse has the tags and pixel bytes of a real image."""
    try:
        rows = int(dataset.Rows)
        columns = int(dataset.Columns)
        bits = int(dataset.BitsAllocated)
        pixels = dataset.PixelData
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        samples = int(dataset.get("SamplesPerPixel", 1) or 1)
        sop_class = str(dataset.SOPClassUID)
    except Exception:
        return False
    if not (0 < rows <= 65535 and 0 < columns <= 65535 and bits in (1, 8, 16, 32)):
        return False
    if not sop_class.startswith("1.2.840.10008."):
        return False
    return len(pixels) >= rows * columns * frames * samples * bits // 8


def _identifying_reason(dataset: Dataset, sop_class: str) -> str | None:
    if sop_class in SECONDARY_CAPTURE_SOP_CLASSES:
        return f"Secondary Capture SOP class {UID(sop_class).name}"
    if _text(dataset, "BurnedInAnnotation").upper() == "YES":
        return "BurnedInAnnotation is YES"
    image_type = {item.strip().upper() for item in _text(dataset, "ImageType").split("\\")}
    localizer = image_type & _LOCALIZER_TYPES
    if localizer:
        return f"ImageType {sorted(localizer)[0]} (a localizer)"
    return None


def _first_item(dataset: Dataset | None, keyword: str) -> Dataset | None:
    if dataset is None:
        return None
    sequence = dataset.get(keyword)
    if not sequence:
        return None
    return sequence[0]


def _rescale(source: Dataset) -> tuple[float, float, bool]:
    """Return (slope, intercept, defaulted) from a dataset or a transformation item."""
    slope_values = _numbers(source, "RescaleSlope")
    intercept_values = _numbers(source, "RescaleIntercept")
    defaulted = slope_values is None or intercept_values is None
    slope = 1.0 if slope_values is None else slope_values[0]
    intercept = 0.0 if intercept_values is None else intercept_values[0]
    return slope, intercept, defaulted


def _classic_frames(path: Path, dataset: Dataset) -> list[Frame]:
    """Build the one frame of a classic single-frame image from its top-level tags."""
    spacing = _floats(_numbers(dataset, "PixelSpacing"), 2)
    slope, intercept, defaulted = _rescale(dataset)
    instance = _numbers(dataset, "InstanceNumber")
    return [
        Frame(
            file=path,
            frame_index=0,
            multi_frame=False,
            rows=int(dataset.Rows),
            columns=int(dataset.Columns),
            position=_floats(_numbers(dataset, "ImagePositionPatient"), 3),
            orientation=_floats(_numbers(dataset, "ImageOrientationPatient"), 6),
            pixel_spacing=None if spacing is None else (float(spacing[0]), float(spacing[1])),
            slope=slope,
            intercept=intercept,
            rescale_defaulted=defaulted,
            echo=_text(dataset, "EchoNumbers"),
            temporal=_text(dataset, "TemporalPositionIdentifier"),
            acquisition=_text(dataset, "AcquisitionNumber"),
            stack="",
            instance_number=None if instance is None else int(instance[0]),
            padding_value=None if dataset.get("PixelPaddingValue") is None else int(dataset.PixelPaddingValue),
        )
    ]


def _group_numbers(per_frame: Dataset | None, shared: Dataset | None, sequence: str, keyword: str) -> list[float] | None:
    """Return a numeric functional-group attribute, the per-frame group first, then the shared one."""
    for group in (per_frame, shared):
        item = _first_item(group, sequence)
        if item is not None and keyword in item:
            return _numbers(item, keyword)
    return None


def _enhanced_frames(path: Path, dataset: Dataset, n_frames: int) -> list[Frame]:
    """Build one frame per frame of an enhanced object, with geometry from the functional groups."""
    shared = _first_item(dataset, "SharedFunctionalGroupsSequence")
    per_frame_groups = dataset.get("PerFrameFunctionalGroupsSequence") or []
    if per_frame_groups and len(per_frame_groups) != n_frames:
        raise InputError(
            f"{path}: NumberOfFrames is {n_frames} but PerFrameFunctionalGroupsSequence has "
            f"{len(per_frame_groups)} items; the file is inconsistent"
        )
    top_spacing = _numbers(dataset, "PixelSpacing")
    frames = []
    for index in range(n_frames):
        per_frame = per_frame_groups[index] if per_frame_groups else None
        position = _group_numbers(per_frame, shared, "PlanePositionSequence", "ImagePositionPatient")
        orientation = _group_numbers(per_frame, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = _floats(_group_numbers(per_frame, shared, "PixelMeasuresSequence", "PixelSpacing") or top_spacing, 2)
        transform = None
        for group in (per_frame, shared):
            transform = _first_item(group, "PixelValueTransformationSequence")
            if transform is not None:
                break
        slope, intercept, defaulted = _rescale(transform if transform is not None else dataset)
        content = _first_item(per_frame, "FrameContentSequence")
        echo_item = _first_item(per_frame, "MREchoSequence")
        frames.append(
            Frame(
                file=path,
                frame_index=index,
                multi_frame=True,
                rows=int(dataset.Rows),
                columns=int(dataset.Columns),
                position=_floats(position, 3),
                orientation=_floats(orientation, 6),
                pixel_spacing=None if spacing is None else (float(spacing[0]), float(spacing[1])),
                slope=slope,
                intercept=intercept,
                rescale_defaulted=defaulted,
                echo="" if echo_item is None else _text(echo_item, "EffectiveEchoTime"),
                temporal="" if content is None else _text(content, "TemporalPositionIndex"),
                acquisition="",
                stack="" if content is None else _text(content, "StackID"),
                instance_number=index + 1,
            )
        )
    return frames


def screen_file(path: Path) -> ScreenedFile | None:
    """Parse ``path`` and return its image frames, or None for a non-image or junk file.

    Raises:
        InputError: a file with the DICM marker fails to parse, or an enhanced object's
            functional groups are inconsistent.
    """
    dataset, preamble_missing = _parse(path)
    if dataset is None:
        logger.warning("skipped a file that is not DICOM: %s", path.name)
        return None
    if preamble_missing and not _is_plausible_image(dataset):
        logger.warning("skipped a file without the DICM marker that does not parse as an image: %s", path.name)
        return None
    sop_class = _text(dataset, "SOPClassUID") or _text(getattr(dataset, "file_meta", Dataset()), "MediaStorageSOPClassUID")
    if sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in dataset:
        logger.info("skipped a DICOMDIR (Media Storage Directory): %s", path.name)
        return None
    if not any(keyword in dataset for keyword in _PIXEL_KEYWORDS):
        name = UID(sop_class).name if sop_class else "unknown SOP class"
        if "Image Storage" in name or "SOPClassUID" not in dataset:
            # pydicom stops quietly at the end of a truncated file, so an image object
            # without pixel data, or a body without even its SOP class, was cut short.
            raise InputError(
                f"{path}: {name} object without pixel data or SOPClassUID; the file is truncated, "
                "so copy it again or remove it"
            )
        logger.info("skipped a non-image object (%s): %s", name, path.name)
        return None
    if preamble_missing:
        if not hasattr(dataset, "file_meta") or "TransferSyntaxUID" not in dataset.file_meta:
            dataset.file_meta = getattr(dataset, "file_meta", None) or FileMetaDataset()
            dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        logger.warning("read a file without the DICM preamble: %s", path.name)
    transfer_syntax = UID(_text(dataset.file_meta, "TransferSyntaxUID") or ImplicitVRLittleEndian)
    n_frames = int(dataset.get("NumberOfFrames", 1) or 1)
    enhanced = n_frames > 1 or "PerFrameFunctionalGroupsSequence" in dataset or "SharedFunctionalGroupsSequence" in dataset
    frames = _enhanced_frames(path, dataset, n_frames) if enhanced else _classic_frames(path, dataset)
    return ScreenedFile(
        path=path,
        dataset=dataset,
        series_uid=_text(dataset, "SeriesInstanceUID"),
        series_number=_text(dataset, "SeriesNumber"),
        sop_class=sop_class,
        modality=_text(dataset, "Modality").upper(),
        frames=frames,
        identifying_reason=_identifying_reason(dataset, sop_class),
        preamble_missing=preamble_missing,
        compressed=transfer_syntax.is_compressed,
        transfer_syntax=transfer_syntax,
    )


def decode_frames(screened: ScreenedFile) -> np.ndarray:
    """Decode the stored pixel values of every frame of a file.

    Returns:
        array of shape (frames, rows, columns) in the stored integer or float type.

    Raises:
        InputError: the pixel data cannot be decoded (the message names the transfer
            syntax and the package that decodes it), is not grey-scale, or a compressed
            frame decoded to all zeros, which is what broken decoders return.
    """
    dataset = screened.dataset
    syntax = screened.transfer_syntax
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise InputError(
            f"{screened.path}: SamplesPerPixel is {samples} ({_text(dataset, 'PhotometricInterpretation')}); "
            "medgan reads grey-scale CT and MR only"
        )
    try:
        pixels = dataset.pixel_array
    except Exception as error:
        hint = ""
        if syntax.is_compressed:
            from pydicom.pixels import get_decoder

            try:
                decoder = get_decoder(syntax)
                if not decoder.is_available:
                    options = "; ".join(decoder.missing_dependencies) or "a decoder plug-in"
                    hint = f"; install one of: {options}"
                else:
                    hint = "; the installed decoders failed on it, so the pixel data is probably corrupt"
            except NotImplementedError:
                hint = "; pydicom has no decoder for this transfer syntax, so decompress the series first (for example with gdcmconv --raw)"
        raise InputError(
            f"{screened.path}: cannot decode pixel data with transfer syntax {syntax.name} ({syntax}){hint} "
            f"[{type(error).__name__}: {error}]"
        ) from None
    frames = pixels.reshape((len(screened.frames),) + pixels.shape[-2:])  # (frames, rows, columns)
    if syntax.is_compressed:
        for index in range(frames.shape[0]):
            if not np.any(frames[index]):
                raise InputError(
                    f"{screened.path}: frame {index + 1} decoded from {syntax.name} ({syntax}) to all zeros, which is "
                    "what a failed decoder returns; if the slice really is blank, decompress the series "
                    "(for example with gdcmconv --raw) and load it again"
                )
    return frames
