"""``medgan validate``: check every scan of a cohort before training."""

from __future__ import annotations

import secrets
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import click

from medgan.errors import InputError, MedganError

__all__ = ["validate"]


def _summary_lines(cohort: object, modalities: dict[str, str]) -> list[str]:
    """Patient-level summary: scans per patient, patients and conditions per split.

    ``modalities`` maps scan ids to the modality found on loading, for scans whose
    record has none (DICOM found in a folder).
    """
    scans = cohort.scans  # type: ignore[attr-defined]
    per_patient = Counter(scan.patient_id for scan in scans)
    counts = sorted(per_patient.values())
    lines = [
        f"{len(scans)} scan(s) of {len(per_patient)} patient(s); scans per patient: "
        f"min {counts[0]}, median {statistics.median(counts):g}, max {counts[-1]}"
    ]
    by_split: dict[str, list] = defaultdict(list)
    for scan in scans:
        by_split[scan.split].append(scan)
    for split in sorted(by_split):
        members = by_split[split]
        patients = {scan.patient_id for scan in members}
        modalities = Counter(scan.modality or modalities.get(scan.scan_id, "unknown") for scan in members)
        lines.append(f"{split}: {len(patients)} patient(s), {len(members)} scan(s), modality {dict(sorted(modalities.items()))}")
        for name in cohort.label_names:  # type: ignore[attr-defined]
            values = Counter(scan.labels[name] for scan in members)
            lines.append(f"  {name}: " + ", ".join(f"{value} {count}" for value, count in sorted(values.items())))
    return lines


@click.command(name="validate")
@click.argument("source", type=click.Path(exists=False, path_type=Path))
@click.option("--modality", type=click.Choice(["CT", "MR"], case_sensitive=False), default=None,
              help="Modality of NIfTI files found in a folder (a manifest has its own column).")
@click.option("--allow-identifying-series", is_flag=True,
              help="Also load localizers, Secondary Capture and burned-in-annotation images.")
@click.option("--nonfinite", type=click.Choice(["reject", "replace"]), default="reject", show_default=True,
              help="Treat NaN/Inf voxels as an error, or as fixable by replacement.")
@click.option("--holdout-fraction", type=float, default=0.2, show_default=True,
              help="Share of patients without a split that go to holdout (manifests only).")
@click.option("--strict", is_flag=True, help="Count warnings (such as disagreeing sform and qform) as problems.")
def validate(
    source: Path, modality: str | None, allow_identifying_series: bool, nonfinite: str, holdout_fraction: float, strict: bool
) -> None:
    """Check every scan of SOURCE (a manifest CSV or a folder of scans) and list all problems.

    Each scan is loaded with the same checks as training; every problem in every
    file is listed at once, followed by a patient-level summary.  The exit status is
    2 when anything is wrong, 0 otherwise.  Patients appear only as counts.
    """
    from tqdm import tqdm

    from medgan.data.dataset import source_digest
    from medgan.data.discover import cohort_from_path
    from medgan.data.manifest import check_manifest
    from medgan.data.pseudonym import Pseudonymizer
    from medgan.data.reader import load_volume

    # Ids are only counted here, so a throw-away salt is enough.
    pseudonymizer = Pseudonymizer(secrets.token_bytes(32))
    is_manifest = source.is_file() and source.suffix.lower() == ".csv"
    problems: list[str] = []
    if is_manifest:
        cohort, manifest_problems = check_manifest(source, pseudonymizer, holdout_fraction=holdout_fraction)
        problems.extend(f"manifest: {problem}" for problem in manifest_problems)
    else:
        cohort = cohort_from_path(source, pseudonymizer, modality=modality)

    warned: list[str] = []
    seen_content: dict[str, str] = {}
    found_modalities: dict[str, str] = {}
    for scan in tqdm(cohort.scans, desc="validating", unit="scan"):
        try:
            volume = load_volume(
                scan.source,
                allow_identifying=allow_identifying_series,
                nonfinite=nonfinite,
                modality=scan.modality,
            )
        except MedganError as error:
            problems.append(f"line {scan.row}: {error}" if is_manifest else str(error))
            continue
        label = f"line {scan.row}: {scan.source}" if is_manifest else str(scan.source)
        if volume.modality is not None:
            found_modalities[scan.scan_id] = volume.modality
        else:
            problems.append(f"{label}: the modality is unknown; add a 'modality' column (CT or MR) or pass --modality")
        for message in volume.warnings:
            (problems if strict else warned).append(f"{label}: {message}")
        digest = source_digest(scan.source)
        if digest in seen_content:
            problems.append(f"{label}: has the same content as {seen_content[digest]}; a scan listed twice counts twice in training")
        seen_content.setdefault(digest, label)

    if cohort.scans:
        for line in _summary_lines(cohort, found_modalities):
            click.echo(line)
    if warned:
        click.echo(f"{len(warned)} warning(s):")
        for line in warned:
            click.echo(f"  - {line}")
    if problems:
        listing = "\n  ".join(problems)
        raise InputError(f"{len(problems)} problem(s) in {len(cohort.scans)} scan(s):\n  {listing}")
    click.echo(f"ok: all {len(cohort.scans)} scan(s) load")
