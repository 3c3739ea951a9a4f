"""Load real scans (nearest training neighbours, holdout scans) for reviewer-only display.

Real scans are found through the run's private pseudonym map or the evaluation's
previews in ``private/evaluation/``; their source paths are never shown or logged.  The
dashboard calls this only for a signed-in reviewer and renders the result as an image
without a download control.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from medgan.errors import InputError, MedganError
from medgan.fileio import sha256_file
from medgan.review.volumes import DisplayVolume, load_display_volume, volume_key

__all__ = ["SCAN_ID", "read_id_map", "id_map_digest", "real_scan_modality", "holdout_partner", "scan_ids_in_split", "load_real_scan"]

logger = logging.getLogger(__name__)

SCAN_ID = re.compile(r"^scan-[0-9a-f]{12}$")


def _id_map_path(run_dir: Path) -> Path:
    return Path(run_dir) / "private" / "id_map.json"


def read_id_map(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Return ``private/id_map.json``, or ``{}`` when the run has none.

    Raises:
        InputError: the file is not a JSON object.
    """
    path = _id_map_path(run_dir)
    if not path.is_file():
        return {}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"the pseudonym map of run {Path(run_dir).name} is not valid JSON ({error}); restore private/id_map.json") from error
    if not isinstance(payload, dict):
        raise InputError(f"the pseudonym map of run {Path(run_dir).name} is not a JSON object; restore private/id_map.json")
    return payload


def id_map_digest(run_dir: Path) -> str:
    """Return the SHA-256 of the pseudonym map (part of real-scan cache keys), or ``""``."""
    path = _id_map_path(run_dir)
    return sha256_file(path) if path.is_file() else ""


def _nearest_rows(run_dir: Path) -> list[dict[str, Any]]:
    nearest = Path(run_dir) / "private" / "evaluation" / "nearest.json"
    try:
        rows = json.loads(nearest.read_text(encoding="utf-8")).get("scans") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [row for row in rows if isinstance(row, dict)]


def real_scan_modality(run_dir: Path, scan_id: str) -> str | None:
    """Return a real scan's modality from the pseudonym map, or None when it is not recorded."""
    entry = read_id_map(run_dir).get(scan_id)
    modality = str(entry.get("modality", "")).upper() if isinstance(entry, dict) else ""
    return modality if modality in ("CT", "MR") else None


def holdout_partner(run_dir: Path, scan_id: str) -> str | None:
    """Return a synthetic file whose nearest holdout scan is ``scan_id``, from the evaluation's nearest.json."""
    for row in _nearest_rows(run_dir):
        if row.get("nearest_holdout") == scan_id and row.get("synthetic"):
            return str(row["synthetic"])
    return None


def scan_ids_in_split(run_dir: Path, split: str) -> list[str]:
    """Return the sorted scan ids of one split (``train`` or ``holdout``).

    The pseudonym map's ``split`` field decides.  For a map without it, the holdout ids
    come from the evaluation's ``private/evaluation/nearest.json`` (the nearest holdout
    scan of each synthetic scan), which covers only part of the holdout set.
    """
    id_map = read_id_map(run_dir)
    ids = {scan_id for scan_id, entry in id_map.items() if isinstance(entry, dict) and entry.get("split") == split}
    if not ids and split == "holdout":
        ids = {str(row.get("nearest_holdout")) for row in _nearest_rows(run_dir) if row.get("nearest_holdout") in id_map}
    return sorted(scan_id for scan_id in ids if SCAN_ID.match(scan_id))


def _preview_path(run_dir: Path, scan_id: str) -> Path | None:
    for suffix in (".nii.gz", ".nii"):
        candidate = Path(run_dir) / "private" / "evaluation" / f"{scan_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _canonical(array: np.ndarray, affine: np.ndarray) -> DisplayVolume:
    import nibabel as nib

    image = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(array, dtype=np.float32), affine))
    data = np.asarray(image.dataobj, dtype=np.float32)
    data.setflags(write=False)
    return DisplayVolume(array=data, zooms=tuple(float(z) for z in image.header.get_zooms()[:3]), non_finite=0)  # type: ignore[arg-type]


def load_real_scan(run_dir: Path, scan_id: str, modality: str | None, preprocess: dict[str, Any] | None) -> DisplayVolume:
    """Load a real scan by pseudonymous id for side-by-side display.

    Looks first for an evaluation preview ``private/evaluation/<scan_id>.nii.gz``, then
    loads the source through ``medgan.data.reader.load_volume`` and, when the ingest
    stage provides it, ``medgan.data.preprocess.preprocess_volume`` with the run's
    preprocessing profile, so the real scan has the synthetic scans' grid and scale.

    Raises:
        InputError: the id is malformed, not in the pseudonym map, or its scan cannot
            be loaded.  Messages name the pseudonymous id, never the source path.
    """
    if not SCAN_ID.match(str(scan_id)):
        raise InputError(f"scan id {scan_id!r} is not of the form scan-<12 hex digits>")
    preview = _preview_path(run_dir, scan_id)
    if preview is not None:
        return load_display_volume(volume_key(preview))
    entry = read_id_map(run_dir).get(scan_id)
    if not isinstance(entry, dict) or not entry.get("source"):
        raise InputError(f"{scan_id} is not in the pseudonym map of run {Path(run_dir).name}, so its scan cannot be shown")

    from medgan.data.nifti_reader import is_nifti_path
    from medgan.data.reader import load_volume

    if str(entry.get("modality", "")).upper() in ("CT", "MR"):
        modality = str(entry["modality"]).upper()
    # DICOM carries its own Modality tag, which load_volume would check against ours.
    requested = modality if is_nifti_path(Path(entry["source"])) else None
    try:
        volume = load_volume(entry["source"], modality=requested, nonfinite="replace")
    except MedganError as error:
        # The reader's message names the source path, which must not reach the page.
        logger.debug("loading %s failed: %s", scan_id, type(error).__name__)
        raise InputError(f"the scan of {scan_id} could not be loaded ({type(error).__name__}); check the site data with `medgan validate`") from None
    try:
        from medgan.data.config import PreprocessConfig
        from medgan.data.preprocess import canonical_affine, denormalize, preprocess_volume
    except ImportError:
        # NOTE: without the preprocessing stage the real scan is shown in its own geometry.
        logger.info("medgan.data.preprocess is unavailable; showing %s without preprocessing", scan_id)
        return _canonical(volume.array, volume.affine)
    config = PreprocessConfig(**(preprocess or {}))
    branch = volume.modality or modality or "CT"
    prepared = np.asarray(preprocess_volume(volume, config, branch))  # (1, G, G, G) in [-1, 1]
    # NOTE: assumes synthetic files hold intensity units (HU for CT) as the export needs; the
    # default percentile window shows both scans alike either way.
    return _canonical(denormalize(prepared[0], config, branch), canonical_affine(config))
