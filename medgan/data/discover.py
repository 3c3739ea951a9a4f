"""Turning a manifest or a plain folder of scans into a :class:`Cohort`.

A folder needs no manifest: every NIfTI file under it, and every folder under it that
directly contains DICOM files, becomes one scan of its own patient.  That lets
``medgan evaluate --train DIR`` and ``medgan validate DIR`` work on any folder.
A folder-made cohort has no labels and puts every scan in the ``train`` split.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from medgan.data.manifest import Cohort, ScanRecord, load_manifest
from medgan.data.nifti_reader import is_nifti_path
from medgan.data.pseudonym import Pseudonymizer
from medgan.data.volume import MODALITIES
from medgan.errors import ConfigError, InputError

__all__ = ["cohort_from_path", "find_scans", "looks_like_dicom", "read_synthetic_index"]

logger = logging.getLogger(__name__)

_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def looks_like_dicom(path: Path) -> bool:
    """Return True for a ``.dcm``-style name or a file with the DICM marker at byte 128."""
    if path.suffix.lower() in _DICOM_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with open(path, "rb") as stream:
            stream.seek(128)
            return stream.read(4) == b"DICM"
    except OSError:
        return False


def find_scans(folder: Path) -> list[Path]:
    """Return every NIfTI file and every DICOM series folder under ``folder``, sorted."""
    scans: list[Path] = []
    for directory in sorted([folder, *(p for p in folder.rglob("*") if p.is_dir())]):
        if any(part.startswith(".") for part in directory.relative_to(folder).parts):
            continue
        files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
        scans.extend(p for p in files if is_nifti_path(p))
        if any(looks_like_dicom(p) for p in files if not is_nifti_path(p)):
            scans.append(directory)
    return scans


def read_synthetic_index(folder: Path) -> dict[str, dict]:
    """Return ``{file name: entry}`` from a medgan synthetic folder's ``index.json``, or {}.

    medgan's generator writes each synthetic volume's labels and modality there, so a
    synthetic folder of mixed CT and MR volumes can be evaluated without a manifest.

    Raises:
        InputError: the index exists but is not a JSON list of entries.
    """
    index_path = Path(folder) / "index.json"
    if not index_path.is_file():
        return {}
    try:
        entries = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{index_path} is not a valid medgan index ({error}); remove it or regenerate the folder") from None
    if not isinstance(entries, list):
        raise InputError(f"{index_path} is not a valid medgan index: expected a list of {{file, labels, sha256}} entries")
    return {str(entry["file"]): entry for entry in entries if isinstance(entry, dict) and entry.get("file")}


def cohort_from_path(path: str | Path, pseudonymizer: Pseudonymizer, modality: str | None = None) -> Cohort:
    """Return the cohort of a manifest CSV, a folder of scans, or a single scan.

    Args:
        path: a ``.csv`` manifest, a folder, a NIfTI file or an enhanced DICOM file.
        pseudonymizer: makes the pseudonymous patient and scan ids.
        modality: ``"CT"`` or ``"MR"`` for NIfTI files found in a folder, which do not
            record a modality.  DICOM scans take theirs from the Modality tag, and a
            manifest has its own column, so both ignore it.

    Raises:
        InputError: the path does not exist or contains no scan.
        ConfigError: the modality is unknown.
    """
    source = Path(path).resolve()
    if modality is not None:
        modality = modality.upper()
        if modality not in MODALITIES:
            raise ConfigError(f"modality {modality!r} is not one of {', '.join(MODALITIES)}")
    if not source.exists():
        raise InputError(f"{source} does not exist; pass a manifest CSV, a folder of scans or one scan")
    if source.is_file() and source.suffix.lower() == ".csv":
        return load_manifest(source, pseudonymizer)
    scans = find_scans(source) if source.is_dir() else [source]
    if not scans:
        raise InputError(f"{source}: no NIfTI file (.nii, .nii.gz) or DICOM series folder found under it")
    indexed = {
        name: str(entry.get("modality", "")).upper()
        for name, entry in (read_synthetic_index(source) if source.is_dir() else {}).items()
        if str(entry.get("modality", "")).upper() in MODALITIES
    }
    records = []
    listing = hashlib.sha256()
    for row, scan in enumerate(scans, start=1):
        relative = scan.relative_to(source).as_posix() if source.is_dir() else scan.name
        listing.update(relative.encode("utf-8") + b"\0")
        records.append(
            ScanRecord(
                scan_id=pseudonymizer.scan_id(str(scan)),
                patient_id=pseudonymizer.patient_id(str(scan)),
                source=scan,
                source_patient_id=relative or ".",
                modality=(modality or indexed.get(scan.name)) if is_nifti_path(scan) else None,
                split="train",
                labels={},
                row=row,
            )
        )
    logger.info("found %d scans in a folder", len(records))
    return Cohort(scans=records, label_names=[], manifest_sha256=listing.hexdigest(), label_values={})
