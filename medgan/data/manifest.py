"""Cohort manifests: one CSV row per scan, read into pseudonymous records.

The manifest format::

    path,patient_id,modality,split,<label column>,...
    ct/lung1.nii.gz,P001,CT,train,chest_ct
    dicom/series_a,P001,CT,holdout,chest_ct

``path`` is a NIfTI file or a DICOM series folder, relative to the manifest's folder
or absolute.  ``patient_id`` groups scans of one person, which is the unit of privacy.
``modality`` (``CT`` or ``MR``) selects the preprocessing branch; it may be empty for
DICOM, where the header says it.  ``split`` is ``train`` or ``holdout`` and may be
empty, in which case whole patients are assigned by :func:`assign_splits`.  Every other
column is a categorical condition label.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from medgan.data.pseudonym import Pseudonymizer
from medgan.errors import InputError

__all__ = ["ScanRecord", "Cohort", "load_manifest", "check_manifest", "assign_splits", "RESERVED_COLUMNS", "SPLITS"]

logger = logging.getLogger(__name__)

RESERVED_COLUMNS = ("path", "patient_id", "modality", "split")
SPLITS = ("train", "holdout")
MODALITIES = ("CT", "MR")


@dataclass(frozen=True)
class ScanRecord:
    """One scan of the cohort, known by pseudonymous ids.

    ``source`` and ``source_patient_id`` are real identifiers; they may be written only
    inside a run's private folder.
    """

    scan_id: str
    patient_id: str
    source: Path
    source_patient_id: str
    modality: str | None
    split: str
    labels: dict[str, str]
    row: int

    @property
    def is_dicom(self) -> bool:
        """True when the source is a DICOM series folder or a single DICOM file."""
        return self.source.is_dir() or self.source.suffix.lower() in (".dcm", ".dicom", "")


@dataclass
class Cohort:
    """All scans of a manifest, plus what the label columns are called."""

    scans: list[ScanRecord]
    label_names: list[str]
    manifest_sha256: str
    label_values: dict[str, list[str]] = field(default_factory=dict)

    def split(self, name: str) -> list[ScanRecord]:
        """Return the scans of one split, in manifest order."""
        return [scan for scan in self.scans if scan.split == name]

    def patients(self, split: str | None = None) -> list[str]:
        """Return the sorted pseudonymous patient ids, optionally of one split."""
        scans = self.scans if split is None else self.split(split)
        return sorted({scan.patient_id for scan in scans})

    def id_map(self) -> dict[str, dict[str, str]]:
        """Return the private map from scan id to source path, patient ids, split and modality."""
        return {
            scan.scan_id: {
                "source": str(scan.source),
                "patient_id": scan.patient_id,
                "source_patient_id": scan.source_patient_id,
                "split": scan.split,
                "modality": scan.modality,
            }
            for scan in self.scans
        }


def _sniff_rows(manifest: Path) -> list[dict[str, str]]:
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"manifest {manifest} not found; pass the path of a CSV file with a 'path' and a 'patient_id' column") from None
    except UnicodeDecodeError as error:
        raise InputError(f"manifest {manifest} is not UTF-8 text ({error}); save it as UTF-8 CSV") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None:
        raise InputError(f"manifest {manifest} is empty; it needs a header row with 'path' and 'patient_id'")
    header = [name.strip() for name in reader.fieldnames]
    missing = [name for name in ("path", "patient_id") if name not in header]
    if missing:
        raise InputError(f"manifest {manifest} has no column {', '.join(missing)}; its header is {header}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise InputError(f"manifest {manifest} repeats column(s) {duplicated}")
    near_misses = [
        f"{name!r} (did you mean {match[0]!r}?)"
        for name in header
        if name not in RESERVED_COLUMNS
        for match in [difflib.get_close_matches(name.lower(), RESERVED_COLUMNS, n=1, cutoff=0.75)]
        if match
    ]
    if near_misses:
        raise InputError(
            f"manifest {manifest}: column(s) {', '.join(near_misses)} look like misspelt reserved columns; every column "
            f"other than {', '.join(RESERVED_COLUMNS)} would become a condition label, so rename them"
        )
    rows = []
    for row in reader:
        rows.append({(key or "").strip(): (value or "").strip() for key, value in row.items()})
    if not rows:
        raise InputError(f"manifest {manifest} has a header but no scans")
    return rows


def load_manifest(manifest: str | Path, pseudonymizer: Pseudonymizer, holdout_fraction: float = 0.2) -> Cohort:
    """Read a manifest CSV into a :class:`Cohort` with pseudonymous ids.

    Every problem in every row is collected and raised together, so a user fixes the
    whole file in one pass.  A patient whose scans are assigned to both splits is an
    error, because a holdout scan of a training patient makes every holdout-based
    calibration (memorization thresholds, attack baselines) optimistic.

    Raises:
        InputError: the file is missing or malformed, a path does not exist, a modality
            or split is unknown, or a patient is in both splits.
    """
    cohort, problems = check_manifest(manifest, pseudonymizer, holdout_fraction)
    if problems:
        listing = "\n  ".join(problems)
        raise InputError(f"manifest {Path(manifest).resolve()} has {len(problems)} problem(s):\n  {listing}")
    return cohort


def check_manifest(manifest: str | Path, pseudonymizer: Pseudonymizer, holdout_fraction: float = 0.2) -> tuple[Cohort, list[str]]:
    """Read a manifest CSV and return the cohort of its valid rows with every row problem.

    ``medgan validate`` uses this to go on checking the scans of the valid rows, so one
    run lists the problems of the manifest and of the files together.

    Raises:
        InputError: the file itself is missing, not UTF-8, or has no usable header.
    """

    manifest = Path(manifest).resolve()
    rows = _sniff_rows(manifest)
    label_names = [name for name in rows[0] if name not in RESERVED_COLUMNS]
    problems: list[str] = []
    scans: list[ScanRecord] = []
    seen_sources: dict[Path, int] = {}
    for line, row in enumerate(rows, start=2):
        raw_path = row.get("path", "")
        patient = row.get("patient_id", "")
        if not raw_path:
            problems.append(f"line {line}: empty 'path'")
            continue
        if not patient:
            problems.append(f"line {line}: empty 'patient_id' for {raw_path}")
            continue
        source = Path(raw_path)
        if not source.is_absolute():
            source = manifest.parent / source
        source = source.resolve()
        if not source.exists():
            problems.append(f"line {line}: {source} does not exist")
            continue
        if source in seen_sources:
            problems.append(f"line {line}: {raw_path} is listed twice (also on line {seen_sources[source]})")
            continue
        seen_sources[source] = line
        modality = row.get("modality", "").upper() or None
        if modality is not None and modality not in MODALITIES:
            problems.append(f"line {line}: modality {row['modality']!r} is not one of {', '.join(MODALITIES)}")
            continue
        split = row.get("split", "").lower()
        if split and split not in SPLITS:
            problems.append(f"line {line}: split {row['split']!r} is not one of {', '.join(SPLITS)} (or empty)")
            continue
        labels = {name: row.get(name, "") for name in label_names}
        empty = [name for name, value in labels.items() if not value]
        if empty:
            problems.append(f"line {line}: empty label column(s) {empty} for {raw_path}")
            continue
        scans.append(
            ScanRecord(
                scan_id=pseudonymizer.scan_id(str(source)),
                patient_id=pseudonymizer.patient_id(patient),
                source=source,
                source_patient_id=patient,
                modality=modality,
                split=split,
                labels=labels,
                row=line,
            )
        )
    scans = assign_splits(scans, holdout_fraction)
    by_patient: dict[str, set[str]] = defaultdict(set)
    for scan in scans:
        by_patient[scan.patient_id].add(scan.split)
    mixed = [scan.row for scan in scans if len(by_patient[scan.patient_id]) > 1]
    if mixed:
        problems.append(
            f"rows {mixed} put one patient in both 'train' and 'holdout'; "
            "splits are by patient, so give all scans of a patient the same split"
        )
    label_values = {name: sorted({scan.labels[name] for scan in scans}) for name in label_names}
    for name, values in label_values.items():
        folded: dict[str, list[str]] = defaultdict(list)
        for value in values:
            folded[value.strip().casefold()].append(value)
        clashes = [spellings for spellings in folded.values() if len(spellings) > 1]
        if clashes:
            problems.append(
                f"label column {name!r} spells one value in several ways {clashes}; they would become separate "
                "conditions, so use one spelling"
            )
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    logger.info(
        "manifest: %d scans of %d patients, labels %s",
        len(scans),
        len(by_patient),
        {name: len(values) for name, values in label_values.items()},
    )
    return Cohort(scans=scans, label_names=label_names, manifest_sha256=digest, label_values=label_values), problems


def assign_splits(scans: list[ScanRecord], holdout_fraction: float) -> list[ScanRecord]:
    """Fill empty splits by patient, using the pseudonymous id as a deterministic key.

    Patients that already have a split keep it.  The rest are ordered by a hash of their
    pseudonymous id and the first ``holdout_fraction`` of them go to ``holdout``, so the
    choice does not depend on any image content.
    """
    if not 0.0 <= holdout_fraction < 1.0:
        raise InputError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    fixed = {scan.patient_id: scan.split for scan in scans if scan.split}
    free = sorted({scan.patient_id for scan in scans if scan.patient_id not in fixed}, key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    n_holdout = int(round(holdout_fraction * len(free)))
    chosen = {patient: ("holdout" if index < n_holdout else "train") for index, patient in enumerate(free)}
    chosen.update(fixed)
    return [
        ScanRecord(
            scan_id=scan.scan_id,
            patient_id=scan.patient_id,
            source=scan.source,
            source_patient_id=scan.source_patient_id,
            modality=scan.modality,
            split=scan.split or chosen[scan.patient_id],
            labels=scan.labels,
            row=scan.row,
        )
        for scan in scans
    ]
