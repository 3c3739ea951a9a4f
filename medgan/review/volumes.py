"""Volume loading, windowing and slicing for display, with content-based cache keys.

The dashboard caches a loaded volume once per file *content* and renders each slider
position from that cached array, so moving a slider never reloads or recomputes the
volume.  Cache keys are :class:`VolumeKey` values (path, size, modification time and
SHA-256 of the file bytes) and never the array itself: Streamlit hashes large array
arguments by sampling, so two volumes that differ only outside the sample would share a
cache entry and the reviewer would see the wrong scan.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medgan.errors import InputError
from medgan.fileio import sha256_file

__all__ = [
    "VolumeKey",
    "DisplayVolume",
    "volume_key",
    "load_display_volume",
    "WINDOW_PRESETS",
    "window_bounds",
    "PLANES",
    "plane_length",
    "slice_plane",
    "to_uint8",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VolumeKey:
    """Identity of a file's content: cheap to hash, changes whenever the bytes change."""

    path: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class DisplayVolume:
    """A volume reoriented to RAS+ for display, read-only."""

    array: np.ndarray  # (X, Y, Z) float32, RAS+ voxel axes
    zooms: tuple[float, float, float]
    non_finite: int


_digest_memo: dict[tuple[str, int, int], str] = {}
_digest_lock = threading.Lock()


def volume_key(path: Path) -> VolumeKey:
    """Return the content key of ``path``; the SHA-256 is recomputed only when size or mtime change.

    Raises:
        InputError: the file does not exist.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise InputError(f"scan {path.name} not found in {path.parent}; re-run `medgan generate` or pick another run") from None
    memo_key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _digest_lock:
        digest = _digest_memo.get(memo_key)
    if digest is None:
        digest = sha256_file(path)
        with _digest_lock:
            _digest_memo[memo_key] = digest
    return VolumeKey(path=str(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=digest)


def load_display_volume(key: VolumeKey) -> DisplayVolume:
    """Load the NIfTI file named by ``key`` and reorient it to RAS+.

    Non-finite voxels are replaced by the minimum finite value (or 0) and counted, so a
    broken synthetic scan still displays and the viewer can say what was replaced.

    Raises:
        InputError: the file is not a readable 3D NIfTI volume, or its content no longer
            matches ``key.sha256`` (it was replaced between hashing and loading).
    """
    import nibabel as nib

    path = Path(key.path)
    try:
        image = nib.as_closest_canonical(nib.load(str(path)))
        array = np.asarray(image.get_fdata(dtype=np.float32))
    except (OSError, EOFError, ValueError, nib.filebasedimages.ImageFileError) as error:
        raise InputError(f"scan {path.name} is not a readable NIfTI file ({error}); regenerate it") from error
    if sha256_file(path) != key.sha256:
        raise InputError(f"scan {path.name} changed while it was being opened; reload the page")
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]  # (X, Y, Z, 1) -> (X, Y, Z)
    if array.ndim != 3:
        raise InputError(f"scan {path.name} has shape {array.shape}; the viewer shows 3D volumes only")
    finite = np.isfinite(array)
    non_finite = int(array.size - finite.sum())
    if non_finite:
        fill = float(array[finite].min()) if finite.any() else 0.0
        array = np.where(finite, array, fill).astype(np.float32)
        logger.warning("scan %s has %d non-finite voxels, shown as %g", path.name, non_finite, fill)
    array.setflags(write=False)
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    return DisplayVolume(array=array, zooms=zooms, non_finite=non_finite)  # type: ignore[arg-type]


# Centre and width in Hounsfield units for CT; percentiles for MR, whose intensities have no unit.
WINDOW_PRESETS: dict[str, dict[str, tuple[str, float, float]]] = {
    "CT": {
        "auto (1-99th percentile)": ("percentile", 1.0, 99.0),
        "soft tissue (W400 L40)": ("hu", 40.0, 400.0),
        "lung (W1500 L-600)": ("hu", -600.0, 1500.0),
        "bone (W1800 L400)": ("hu", 400.0, 1800.0),
        "brain (W80 L40)": ("hu", 40.0, 80.0),
        "full range": ("percentile", 0.0, 100.0),
    },
    "MR": {
        "auto (1-99th percentile)": ("percentile", 1.0, 99.0),
        "wide (0.5-99.5th percentile)": ("percentile", 0.5, 99.5),
        "contrast (5-95th percentile)": ("percentile", 5.0, 95.0),
        "full range": ("percentile", 0.0, 100.0),
    },
}


def window_bounds(array: np.ndarray, modality: str, preset: str) -> tuple[float, float]:
    """Return the ``(low, high)`` intensities a preset maps to black and white.

    A constant volume gets a window of width 1 around its value, so a collapsed
    generator's output displays as flat grey instead of dividing by zero.

    Raises:
        InputError: the modality or preset is unknown.
    """
    presets = WINDOW_PRESETS.get(modality)
    if presets is None or preset not in presets:
        known = ", ".join(WINDOW_PRESETS.get(modality, {})) or ", ".join(WINDOW_PRESETS)
        raise InputError(f"window preset {preset!r} for modality {modality!r} is unknown; choose one of {known}")
    kind, first, second = presets[preset]
    if kind == "hu":
        low, high = first - second / 2, first + second / 2
    else:
        low, high = (float(value) for value in np.percentile(array, [first, second]))
    if not high > low:
        low, high = low - 0.5, low + 0.5
    return float(low), float(high)


PLANES = ("axial", "coronal", "sagittal")


def plane_length(shape: tuple[int, ...], plane: str) -> int:
    """Return how many slices ``plane`` has in a volume of ``shape`` (X, Y, Z)."""
    return shape[{"sagittal": 0, "coronal": 1, "axial": 2}[plane]]


def slice_plane(array: np.ndarray, plane: str, index: int) -> np.ndarray:
    """Return one slice of a RAS+ volume in radiological display orientation.

    Axial and coronal slices show the patient's right on the image's left. Axial
    slices have anterior at the top. Coronal and sagittal slices have superior at the
    top, and sagittal slices have anterior on the left.

    Raises:
        InputError: the plane is unknown or ``index`` is outside the volume.
    """
    if plane not in PLANES:
        raise InputError(f"plane {plane!r} is unknown; use one of {', '.join(PLANES)}")
    length = plane_length(array.shape, plane)
    if not 0 <= index < length:
        raise InputError(f"{plane} slice {index} is outside 0..{length - 1}")
    if plane == "axial":
        return array[::-1, ::-1, index].T  # (X, Y) -> (Y, X), rows anterior to posterior
    if plane == "coronal":
        return array[::-1, index, ::-1].T  # (X, Z) -> (Z, X), rows superior to inferior
    return array[index, ::-1, ::-1].T  # (Y, Z) -> (Z, Y), rows superior to inferior


def to_uint8(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map intensities in ``[low, high]`` to 0..255, clipping outside."""
    scaled = (np.asarray(plane, dtype=np.float32) - low) / (high - low)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
