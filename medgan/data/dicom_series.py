"""Assembling DICOM frames into one checked 3D volume.

pydicom parses and decodes every file, but the assembly is medgan's own.  MONAI 1.6's
``PydicomReader`` (``monai/data/image_reader.py``) sorts slices by InstanceNumber and
averages the z differences of ImagePositionPatient into one spacing.  It only warns
about mixed sizes and spacings, and it falls back to an identity affine when position
or orientation is missing.  Each of these returns a wrong volume without an error.

The rules, each of which some widely used reader has broken silently:

* files are grouped by SeriesInstanceUID, then by echo, temporal position and stack,
  and repeated positions are split by AcquisitionNumber.  More than one group is an
  error that lists them, never a silent pick;
* frames are sorted by ImagePositionPatient projected on the slice normal (the cross
  product of the ImageOrientationPatient vectors), never by file name or
  InstanceNumber; the slice spacing comes from those projections, never from
  SliceThickness or SpacingBetweenSlices;
* missing position or orientation, a frame whose orientation differs from the rest,
  duplicate positions, positions off the slice normal (gantry tilt) and uneven gaps
  (a missing slice) are errors that give the positions;
* RescaleSlope/RescaleIntercept are applied per frame in float64, so unsigned storage
  with a negative intercept cannot wrap; absent tags default to slope 1 and
  intercept 0 with a log line (and a warning for CT, where they are required).
  NOTE: Philips MR private scale factors (2005,100E) are not applied, so MR values are
  the displayed values of RescaleSlope/RescaleIntercept, as in most converters.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from medgan.data.dicom_files import Frame, ScreenedFile, decode_frames, screen_file
from medgan.data.volume import MODALITIES, Volume
from medgan.errors import InputError

__all__ = ["read_dicom", "ORIENTATION_TOLERANCE", "GAP_TOLERANCE_FRACTION", "MIN_SLICES"]

logger = logging.getLogger(__name__)

# Largest difference between two frames' direction cosines that still counts as the
# same orientation.  It absorbs the rounding of decimal-string values but no real tilt.
ORIENTATION_TOLERANCE = 1e-4
# A gap may differ from the median gap by this fraction (plus 0.001 mm for rounding of
# the decimal-string positions) before the series counts as missing a slice.
GAP_TOLERANCE_FRACTION = 0.01
_GAP_TOLERANCE_MM = 1e-3
# A frame's position may lie this far off the line through the first position along
# the slice normal before the stack counts as sheared (tilted gantry).
_SHEAR_TOLERANCE_MM = 0.01
# A 3D model needs a volume; one slice has no through-plane spacing to trust.
MIN_SLICES = 2
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Voxels outside the scanned field (PixelPaddingValue) become air for CT and 0 for MR,
# instead of the stored padding (often -2000 or -3024 HU after rescale), which is no tissue.
_PADDING_FILL = {"CT": -1024.0, "MR": 0.0}


def _dicom_files(folder: Path) -> list[Path]:
    """Return every regular file in ``folder`` (not recursive), sorted only to make logs stable."""
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))


def _series_label(files: list[ScreenedFile]) -> str:
    first = files[0]
    frames = sum(len(item.frames) for item in files)
    size = f"{first.frames[0].columns}x{first.frames[0].rows}"
    number = first.series_number or "?"
    return f"SeriesNumber {number}, {first.modality or 'no modality'}, {len(files)} file(s), {frames} frame(s) of {size} (e.g. {first.path.name})"


def _screen_folder(source: Path, allow_identifying: bool) -> list[ScreenedFile]:
    """Parse every file of a folder (or one file) and keep the image files of one series."""
    paths = _dicom_files(source) if source.is_dir() else [source]
    if not paths:
        if source.is_dir() and any(path.is_dir() for path in source.iterdir()):
            raise InputError(
                f"{source}: contains sub-folders but no files; point to the folder of one series "
                "(medgan validate on this folder lists every series folder under it)"
            )
        raise InputError(f"{source}: the folder is empty; point to a folder with the DICOM files of one series")
    screened = [item for item in (screen_file(path) for path in paths) if item is not None]
    if not screened:
        raise InputError(f"{source}: no DICOM image found among {len(paths)} file(s) (non-image objects and non-DICOM files were skipped)")

    kept = []
    excluded: dict[str, int] = defaultdict(int)
    for item in screened:
        if item.identifying_reason is not None and not allow_identifying:
            excluded[item.identifying_reason] += 1
            continue
        kept.append(item)
    for reason, count in excluded.items():
        logger.info("excluded %d file(s) that may show identifying text in the pixels: %s", count, reason)
    if not kept:
        reasons = ", ".join(f"{count} with {reason}" for reason, count in excluded.items())
        raise InputError(
            f"{source}: every image may show identifying text in its pixels ({reasons}), so none was loaded; "
            "check the images, then set data.allow_identifying_series=true (or --allow-identifying-series) to load them"
        )

    by_series: dict[str, list[ScreenedFile]] = defaultdict(list)
    for item in kept:
        by_series[item.series_uid].append(item)
    if len(by_series) > 1:
        listing = "\n  ".join(_series_label(files) for files in by_series.values())
        raise InputError(
            f"{source}: contains {len(by_series)} series; put each series in its own folder and list them separately:\n  {listing}"
        )
    return kept


def _split_key(frame: Frame) -> tuple[str, str, str]:
    return (frame.echo, frame.temporal, frame.stack)


def _check_one_volume(source: Path, frames: list[Frame]) -> None:
    """Reject a series that contains several echoes, time points or stacks."""
    groups: dict[tuple[str, str, str], list[Frame]] = defaultdict(list)
    for frame in frames:
        groups[_split_key(frame)].append(frame)
    if len(groups) > 1:
        lines = []
        for (echo, temporal, stack), members in sorted(groups.items()):
            parts = [f"echo {echo}" if echo else "", f"temporal position {temporal}" if temporal else "", f"stack {stack}" if stack else ""]
            label = ", ".join(part for part in parts if part) or "no echo/temporal/stack tag"
            lines.append(f"{label}: {len(members)} frame(s) (e.g. {members[0].file.name})")
        listing = "\n  ".join(lines)
        raise InputError(
            f"{source}: one series contains {len(groups)} volumes (different echoes, time points or stacks); "
            f"export each one as its own series:\n  {listing}"
        )


def _check_acquisitions(source: Path, frames: list[Frame], normal: np.ndarray) -> None:
    """Reject repeated acquisitions that share a series, naming each AcquisitionNumber.

    AcquisitionNumber alone does not separate volumes, because some CT scanners number
    every rotation of one helical volume.  It is used only when positions repeat and the
    acquisitions, taken one at a time, do not.
    """
    distances = np.round([float(f.position @ normal) for f in frames], 3)  # type: ignore[operator]
    if len(set(distances.tolist())) == len(frames):
        return
    groups: dict[str, list[int]] = defaultdict(list)
    for index, frame in enumerate(frames):
        groups[frame.acquisition].append(index)
    if len(groups) < 2:
        return
    if all(len(set(distances[members].tolist())) == len(members) for members in groups.values()):
        listing = "\n  ".join(
            f"AcquisitionNumber {number or '(none)'}: {len(members)} frame(s) (e.g. {frames[members[0]].file.name})"
            for number, members in sorted(groups.items())
        )
        raise InputError(
            f"{source}: one series contains {len(groups)} acquisitions at the same positions; "
            f"export each one as its own series:\n  {listing}"
        )


def _frame_name(frame: Frame) -> str:
    return f"{frame.file.name} frame {frame.frame_index + 1}" if frame.multi_frame else frame.file.name


def _check_geometry(source: Path, frames: list[Frame]) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Validate shared orientation, size and spacing; return (row cosine, column cosine, spacing)."""
    missing = [_frame_name(f) for f in frames if f.position is None or f.orientation is None or f.pixel_spacing is None]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(
            f"{source}: {len(missing)} frame(s) lack ImagePositionPatient, ImageOrientationPatient or PixelSpacing "
            f"(geometry missing: {shown}); medgan does not guess a geometry, so export the series with these tags"
        )
    sizes = {(f.rows, f.columns) for f in frames}
    if len(sizes) > 1:
        raise InputError(f"{source}: frames have different sizes {sorted(sizes)} (rows, columns); one series must have one size")

    reference = frames[0].orientation
    assert reference is not None
    differing = [f for f in frames if np.max(np.abs(f.orientation - reference)) > ORIENTATION_TOLERANCE]  # type: ignore[operator]
    if differing:
        # Name the minority: when most frames differ from the first one, the first is the odd one out.
        if len(differing) > len(frames) / 2:
            differing = [f for f in frames if f not in differing]
        listing = "; ".join(f"{_frame_name(f)} has {np.round(f.orientation, 4).tolist()}" for f in differing[:5])  # type: ignore[arg-type]
        raise InputError(
            f"{source}: mixed ImageOrientationPatient in one series ({len(differing)} of {len(frames)} frame(s) differ: {listing}); "
            "remove the odd frames (often a localizer) or export the stacks as separate series"
        )
    row_cosine = reference[:3] / np.linalg.norm(reference[:3])
    column_cosine = reference[3:] / np.linalg.norm(reference[3:])
    if abs(float(row_cosine @ column_cosine)) > 1e-3:
        raise InputError(f"{source}: ImageOrientationPatient {reference.tolist()} has non-perpendicular row and column vectors")

    spacings = {f.pixel_spacing for f in frames}
    if len(spacings) > 1:
        raise InputError(f"{source}: frames have different PixelSpacing {sorted(spacings)}; one series must have one spacing")
    spacing = frames[0].pixel_spacing
    assert spacing is not None
    if min(spacing) <= 0:
        raise InputError(f"{source}: PixelSpacing {list(spacing)} is not positive")
    return row_cosine, column_cosine, spacing


def _sort_and_space(source: Path, frames: list[Frame], normal: np.ndarray) -> tuple[list[Frame], float]:
    """Sort frames along the slice normal and return them with the checked slice spacing."""
    if len(frames) < MIN_SLICES:
        raise InputError(
            f"{source}: the series has {len(frames)} slice(s); medgan needs at least {MIN_SLICES} slices for a 3D volume "
            "and does not take the through-plane spacing from SliceThickness"
        )
    distances = np.array([float(f.position @ normal) for f in frames])  # type: ignore[operator]
    order = np.argsort(distances, kind="stable")
    frames = [frames[i] for i in order]
    distances = distances[order]
    gaps = np.diff(distances)

    duplicates = np.flatnonzero(gaps <= _GAP_TOLERANCE_MM)
    if duplicates.size:
        listing = "; ".join(
            f"{_frame_name(frames[i])} and {_frame_name(frames[i + 1])} at {np.round(frames[i].position, 3).tolist()}"  # type: ignore[arg-type]
            for i in duplicates[:5]
        )
        raise InputError(
            f"{source}: duplicate positions in series ({duplicates.size} pair(s): {listing}); "
            "the folder contains copies of slices or several volumes that share a SeriesInstanceUID"
        )

    first = frames[0].position
    offsets = [np.linalg.norm((f.position - first) - (d - distances[0]) * normal) for f, d in zip(frames, distances)]  # type: ignore[operator]
    if max(offsets) > _SHEAR_TOLERANCE_MM + GAP_TOLERANCE_FRACTION * float(np.median(gaps)):
        worst = int(np.argmax(offsets))
        raise InputError(
            f"{source}: slice positions do not lie along the slice normal ({_frame_name(frames[worst])} is {offsets[worst]:.2f} mm off), "
            "as in a tilted-gantry CT; resample it to an orthogonal grid (for example dcm2niix corrects tilt) before loading"
        )

    median = float(np.median(gaps))
    tolerance = GAP_TOLERANCE_FRACTION * median + _GAP_TOLERANCE_MM
    uneven = np.flatnonzero(np.abs(gaps - median) > tolerance)
    if uneven.size:
        listing = "; ".join(
            f"{gaps[i]:.3f} mm between {_frame_name(frames[i])} ({distances[i]:.3f}) and {_frame_name(frames[i + 1])} ({distances[i + 1]:.3f})"
            for i in uneven[:5]
        )
        raise InputError(
            f"{source}: inconsistent slice spacing (max gap {gaps.max():.3f} mm vs median {median:.3f} mm; {listing}); "
            "slices are missing or the series mixes spacings; add the missing files or export a regular series"
        )
    return frames, median


def _modality(source: Path, files: list[ScreenedFile], requested: str | None) -> str | None:
    found = sorted({item.modality for item in files if item.modality})
    if len(found) > 1:
        raise InputError(f"{source}: one series has several modalities {found}")
    header = found[0] if found else None
    if requested is not None:
        if header in MODALITIES and header != requested:
            raise InputError(f"{source}: the manifest or option gives {requested} but the DICOM Modality is {header}; correct one of them")
        return requested
    if header is None:
        return None
    if header not in MODALITIES:
        raise InputError(f"{source}: Modality {header} is not supported; medgan trains on CT and MR")
    return header


def read_dicom(source: Path, *, allow_identifying: bool = False, modality: str | None = None) -> Volume:
    """Read a DICOM series folder, or one enhanced multi-frame file, into a checked :class:`Volume`.

    Args:
        source: a folder with the files of exactly one series, or one file.
        allow_identifying: load localizers, Secondary Capture and burned-in-annotation
            images, which are excluded by default because their pixels may show text.
        modality: the expected modality; it must match the header when the header has one.

    Raises:
        InputError: naming the file and the rule for every case the module docstring lists.
    """
    files = _screen_folder(source, allow_identifying)
    warnings: list[str] = []
    chosen_modality = _modality(source, files, modality)

    frames = [frame for item in files for frame in item.frames]
    _check_one_volume(source, frames)
    row_cosine, column_cosine, (row_spacing, column_spacing) = _check_geometry(source, frames)
    normal = np.cross(row_cosine, column_cosine)
    _check_acquisitions(source, frames, normal)
    frames, slice_spacing = _sort_and_space(source, frames, normal)

    preambleless = sum(item.preamble_missing for item in files)
    if preambleless:
        warnings.append(f"{preambleless} file(s) lack the DICM preamble and were read because they parse as complete images")
    defaulted = sum(frame.rescale_defaulted for frame in frames)
    if defaulted:
        message = f"{defaulted} of {len(frames)} frame(s) lack RescaleSlope or RescaleIntercept; slope 1 and intercept 0 were used for the missing tags"
        logger.info("%s", message)
        if chosen_modality == "CT":
            warnings.append(message + " (CT requires them, so check the Hounsfield units)")

    decoded = {id(item): decode_frames(item) for item in files}  # each (frames, rows, columns)
    by_file = {item.path: item for item in files}
    planes = np.empty((len(frames), frames[0].rows, frames[0].columns), dtype=np.float32)  # (Z, rows, columns)
    fill = _PADDING_FILL.get(chosen_modality or "", 0.0)
    padded = 0
    for k, frame in enumerate(frames):
        stored = decoded[id(by_file[frame.file])][frame.frame_index]  # (rows, columns)
        plane = stored.astype(np.float64) * frame.slope + frame.intercept
        if frame.padding_value is not None:
            outside = stored == frame.padding_value
            plane[outside] = fill
            padded += int(outside.sum())
        planes[k] = plane
    # Columns run along the row cosine, which is voxel axis i, so (Z, rows, columns)
    # becomes (X, Y, Z) by reversing the axes.  The view is Fortran-ordered, like the
    # arrays nibabel returns for NIfTI; a C-order copy would cost more than decoding.
    array = planes.transpose(2, 1, 0)  # (X, Y, Z)
    if padded:
        logger.info("set %d voxels marked by PixelPaddingValue (outside the scanned field) to %g", padded, fill)

    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_cosine * column_spacing
    affine_lps[:3, 1] = column_cosine * row_spacing
    affine_lps[:3, 2] = normal * slice_spacing
    affine_lps[:3, 3] = frames[0].position  # type: ignore[assignment]
    affine = _LPS_TO_RAS @ affine_lps
    logger.debug("assembled %d slices, spacing %.4g x %.4g x %.4g mm", len(frames), column_spacing, row_spacing, slice_spacing)
    return Volume(array=array, affine=affine, modality=chosen_modality, warnings=warnings)
