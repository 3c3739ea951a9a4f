"""Exporting a run's synthetic scans: the staging export and the reviewed release.

The export is built in a temporary folder beside the destination, checked by the leak
scanner, and renamed into place only when clean, so a rejected export leaves nothing
behind and a previous export stays intact.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import yaml

from medgan.data.config import PreprocessConfig
from medgan.errors import ConfigError, InputError, LeakError, ReviewError
from medgan.export.card import build_card, render_markdown
from medgan.export.config import ExportConfig
from medgan.export.dicom import SeriesOptions, write_dicom_series
from medgan.export.leaks import identifiers_from_run, scan_folder
from medgan.export.multiframe import enhanced_available, write_dicom_enhanced
from medgan.export.nifti import save_nifti
from medgan.fileio import sha256_file, write_json_atomic, write_text_atomic

__all__ = ["ExportSummary", "export_run", "load_run_inputs", "RunInputs", "saturate"]

logger = logging.getLogger(__name__)

FORMATS = ("nifti", "dicom", "dicom-enhanced")
_HEAD_WORDS = re.compile(r"brain|head|neuro|skull|face|cranial", re.IGNORECASE)
_AFFINE_TOLERANCE = 1e-4


@dataclass
class ExportSummary:
    """Result of an export: the files written, those left out and the reasons."""

    out_dir: Path
    written: list[str]
    left_out: list[dict[str, str]]
    card_path: Path
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunInputs:
    """The public files of a run that an export reads."""

    report: dict[str, Any]
    config: dict[str, Any]
    index: list[dict[str, Any]]
    export_config: ExportConfig


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} {path} not found; run the pipeline stages before export") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{what} {path} is not valid JSON ({error})") from None


def load_run_inputs(run_dir: Path) -> RunInputs:
    """Read ``report.json``, ``config.yaml`` and ``synthetic/index.json`` of a run.

    Raises:
        InputError: a file is missing or malformed.
        ConfigError: the run's export section is invalid.
    """
    report = _read_json(run_dir / "report.json", "run report")
    if not isinstance(report, dict):
        raise InputError(f"run report {run_dir / 'report.json'} must be a JSON object")
    config_path = run_dir / "config.yaml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        config = report.get("config") or {}
    except yaml.YAMLError as error:
        raise InputError(f"run configuration {config_path} is not valid YAML ({error})") from None
    if not isinstance(config, dict):
        raise InputError(f"run configuration {config_path} must be a mapping")
    index = _read_json(run_dir / "synthetic" / "index.json", "synthetic index")
    if not isinstance(index, list) or not all(isinstance(item, dict) and "file" in item and "sha256" in item for item in index):
        raise InputError(f"synthetic index {run_dir / 'synthetic' / 'index.json'} must be a list of {{file, labels, sha256}}")
    try:
        export_config = ExportConfig.model_validate(config.get("export") or {})
    except ValueError as error:
        raise ConfigError(f"invalid export section in {config_path}: {error}") from None
    return RunInputs(report=report, config=config, index=index, export_config=export_config)


def saturate(values: np.ndarray, modality: str, preprocess: PreprocessConfig) -> tuple[np.ndarray, int]:
    """Clip values to the profile's output range; return them and the number of clipped voxels.

    Synthetic files hold HU for CT (the inverse of the preprocessing window, so HU
    outside the window cannot occur in a generator output and show as the window's
    edges) and 0..``MR_UNIT_MAX`` for MR.  A value outside that range means the file was
    changed, so it is saturated like the generator would have and counted on the card.
    """
    from medgan.data.preprocess import MR_UNIT_MAX

    lower, upper = preprocess.ct_window if modality == "CT" else (0.0, MR_UNIT_MAX)
    values = np.asarray(values, dtype=np.float64)
    outside = int(np.count_nonzero((values < lower) | (values > upper)))
    return np.clip(values, lower, upper), outside


def _preprocess_config(inputs: RunInputs, run_dir: Path) -> PreprocessConfig:
    try:
        return PreprocessConfig.model_validate(inputs.config.get("preprocess") or {})
    except ValueError as error:
        raise InputError(f"invalid preprocess section in {run_dir / 'config.yaml'}: {error}") from None


def _generator_modality(run_dir: Path, labels: dict[str, Any]) -> str | None:
    """Return the modality generator.json records for these labels, if any."""
    path = run_dir / "generator" / "generator.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON ({error})") from None
    if meta.get("modality") in ("CT", "MR"):
        return str(meta["modality"])
    for item in meta.get("modality_by_condition") or []:
        if item.get("labels") == labels:
            return str(item.get("modality"))
    return None


def _modality(inputs: RunInputs, entry: dict[str, Any], run_dir: Path) -> str:
    data = inputs.report.get("data") or {}
    labels = entry.get("labels") or {}
    candidates = (
        entry.get("modality"),
        _generator_modality(run_dir, labels),
        data.get("modality"),
        labels.get("modality"),
        inputs.export_config.modality,
    )
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.upper() in ("CT", "MR"):
            return candidate.upper()
    raise ConfigError(
        f"the modality of {entry['file']} is not recorded in the index, the report or its labels; "
        "set export.modality to CT or MR"
    )


def _is_head_scan(inputs: RunInputs, entry: dict[str, Any]) -> bool:
    if inputs.export_config.head_scan is not None:
        return inputs.export_config.head_scan
    data = inputs.report.get("data") or {}
    words = [str(value) for value in (entry.get("labels") or {}).values()] + [str(data.get("profile", ""))]
    return any(_HEAD_WORDS.search(word) for word in words)


def _select(run_dir: Path, inputs: RunInputs, approved_only: bool, drop_flagged: bool) -> tuple[list[dict[str, Any]], list[dict[str, str]], list[str], dict[str, Any]]:
    """Apply the staging or release policy; return kept entries, left-out reasons, uncovered steps and the review record."""
    from medgan.review.approvals import flagged_files

    # The same rule as the review dashboard: "flagged" entries and flagged "per_scan" rows.
    flagged = flagged_files(inputs.report)
    kept: list[dict[str, Any]] = []
    left_out: list[dict[str, str]] = []
    uncovered: list[str] = []
    evaluation_id = (inputs.report.get("evaluation") or {}).get("id")
    review: dict[str, Any] = {"evaluation_id": evaluation_id, "n_synthetic": len(inputs.index)}

    if approved_only:
        if not evaluation_id:
            raise ReviewError(f"{run_dir / 'report.json'} has no evaluation id; evaluate the run before a release")
        from medgan.review.approvals import approved_hashes

        # approved_hashes counts a flagged scan only when a privacy officer overrode the
        # flag with a written reason, so an overridden flag no longer blocks the release.
        approved = approved_hashes(run_dir, evaluation_id)
        hashes = {Path(entry["file"]).name: entry["sha256"] for entry in inputs.index}
        blocking = sorted(name for name in flagged & set(hashes) if hashes[name] not in approved)
        if blocking and not drop_flagged:
            raise ReviewError(
                f"release blocked: {len(blocking)} synthetic scan(s) are flagged as possible copies of training "
                f"scans ({', '.join(blocking)}); retrain with more privacy, have a privacy officer override each flag "
                "in the dashboard, or set export.drop_flagged (--drop-flagged) to release without them, which the "
                "dataset card records"
            )
        review["policy"] = "release: every exported scan approved for the current evaluation id"
    else:
        approved = None
        review["policy"] = "staging: not reviewed, not for release; flagged scans are never exported"

    overridden: list[str] = []
    for entry in inputs.index:
        name = Path(entry["file"]).name
        if name in flagged and approved is not None and entry["sha256"] in approved:
            overridden.append(name)
            kept.append(entry)
        elif name in flagged:
            left_out.append({"synthetic": name, "reason": "flagged by the memorization check as a possible copy of a training scan"})
        elif approved is not None and entry["sha256"] not in approved:
            left_out.append({"synthetic": name, "reason": f"not approved by reviewers for evaluation {evaluation_id}"})
        else:
            kept.append(entry)
    if flagged and any(item["reason"].startswith("flagged") for item in left_out):
        uncovered.append(
            "scans flagged by the memorization check (nearest-neighbour similarity to real training scans) were removed; "
            "this filter looks at real data and is not covered by epsilon"
        )
    if overridden:
        uncovered.append(
            f"{len(overridden)} scan(s) flagged by the memorization check were released after a privacy officer compared "
            "them with real training scans and overrode the flag; that judgement looks at real data and is not covered by epsilon"
        )
    if approved is not None:
        review["n_approved"] = len([entry for entry in inputs.index if entry["sha256"] in approved])
        if not kept:
            raise ReviewError(
                f"release blocked: no synthetic scan of {run_dir} is approved for evaluation {evaluation_id}; "
                "review the scans in the dashboard first"
            )
    review["n_exported"] = len(kept)
    review["decisions"] = _decision_counts(run_dir, evaluation_id, strict=approved_only)
    return kept, left_out, uncovered, review


def _decision_counts(run_dir: Path, evaluation_id: str | None, *, strict: bool) -> dict[str, int] | str:
    """Count reviewers' decisions by status for the card (no reviewer names).

    A staging export records an unverifiable audit log instead of failing on it; a
    release has already failed on it in ``approved_hashes``.
    """
    if not evaluation_id:
        return "no evaluation id: not reviewed"
    from medgan.review.approvals import scan_states

    try:
        states = scan_states(run_dir, evaluation_id)
    except ReviewError as error:
        if strict:
            raise
        return f"audit log could not be verified: {error}"
    counts: dict[str, int] = {}
    for state in states:
        counts[state.status] = counts.get(state.status, 0) + 1
    counts["flag overrides by a privacy officer"] = sum(1 for state in states if state.override is not None)
    return counts


def _load_synthetic(path: Path, entry: dict[str, Any], affine: np.ndarray, grid: int) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"synthetic file {path} listed in index.json does not exist")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise InputError(
            f"synthetic file {path} does not match its SHA-256 in index.json; it changed after generation "
            "(and after any review), so regenerate or re-review it"
        )
    image = nib.load(str(path))
    values = np.asarray(image.dataobj, dtype=np.float32)
    if values.shape != (grid, grid, grid):
        raise InputError(f"synthetic file {path} has shape {values.shape}; the profile's grid is {(grid, grid, grid)}")
    if not np.allclose(image.affine, affine, atol=_AFFINE_TOLERANCE):
        raise InputError(
            f"synthetic file {path} has an affine that is not the profile's canonical affine; a synthetic volume "
            "must never carry a real scan's geometry, so regenerate it"
        )
    if not np.all(np.isfinite(values)):
        raise InputError(f"synthetic file {path} contains NaN or Inf values")
    return values


def _replace_folder(temporary: Path, destination: Path) -> None:
    """Move ``temporary`` to ``destination``, replacing a previous medgan export there."""
    if destination.exists():
        if any(destination.iterdir()) and not (destination / "dataset_card.json").exists():
            raise ConfigError(f"export folder {destination} exists and is not a medgan export; choose an empty or new folder")
        previous = destination.with_name(f".{destination.name}.old-{secrets.token_hex(4)}")
        os.replace(destination, previous)
        os.replace(temporary, destination)
        shutil.rmtree(previous)
    else:
        os.replace(temporary, destination)


def _write_volume(
    values: np.ndarray,
    affine: np.ndarray,
    folder: Path,
    fmt: str,
    entry: dict[str, Any],
    modality: str,
    settings: ExportConfig,
    preprocess: PreprocessConfig,
    series_number: int,
) -> dict[str, Any]:
    """Write one volume in ``fmt`` into ``folder``; return its record for the export's index.json."""
    from medgan.data.preprocess import MR_UNIT_MAX

    name = Path(entry["file"]).name
    stem = name.removesuffix(".nii.gz").removesuffix(".nii")
    record: dict[str, Any] = {"synthetic": name, "labels": entry.get("labels") or {}, "synthetic_sha256": entry["sha256"], "modality": modality}
    if fmt == "nifti":
        target = folder / f"{stem}.nii.gz"
        dtype = np.float32 if settings.nifti_dtype == "float32" else np.int16
        save_nifti(values, affine, target, dtype=dtype, description=f"medgan synthetic {modality}")
        record.update(exported=target.name, sha256=sha256_file(target))
        return record

    window = tuple(preprocess.ct_window) if modality == "CT" else (0.0, MR_UNIT_MAX)
    options = SeriesOptions(
        modality=modality,
        description=f"medgan synthetic {modality} {stem}",
        window=window,
        recognizable_features=not settings.faces_removed,
        series_number=series_number,
    )
    if fmt == "dicom":
        series = write_dicom_series(values, affine, folder / stem, options)
        record.update(exported=stem, n_files=len(series.files), series_uid=series.series_uid)
    else:
        series = write_dicom_enhanced(values, affine, folder / f"{stem}.dcm", options)
        record.update(exported=f"{stem}.dcm", n_frames=values.shape[2], series_uid=series.series_uid)
    return record


def _intensity_section(fmt: str, modalities: list[str], preprocess: PreprocessConfig, saturated: int, settings: ExportConfig) -> dict[str, Any]:
    """Describe the output units, saturation and quantisation for the card."""
    from medgan.data.preprocess import MR_UNIT_MAX

    return {
        "modalities": modalities,
        "ct_unit": "HU",
        "ct_window": list(preprocess.ct_window),
        "ct_note": (
            "CT values are mapped back to HU through the profile window; HU outside the window are saturated "
            "to its edges, because preprocessing clipped them before training"
        ),
        "mr_unit": f"arbitrary units 0..{MR_UNIT_MAX:g}, 0 at the profile's low percentile and {MR_UNIT_MAX:g} at the high one",
        "saturated_voxels": saturated,
        "dicom_quantisation": "DICOM stores integers: CT rounded to 1 HU, MR to 1 unit" if fmt != "nifti" else None,
        "nifti_dtype": settings.nifti_dtype if fmt == "nifti" else None,
    }


def export_run(
    run_dir: Path,
    *,
    fmt: str = "nifti",
    out_dir: Path | None = None,
    approved_only: bool = False,
    staging: bool = True,
    drop_flagged: bool | None = None,
) -> ExportSummary:
    """Export a run's synthetic scans with a dataset card, after a leak scan.

    A staging export (the pipeline's, ``approved_only=False``) writes every scan except
    those flagged by the memorization check.  A release (``approved_only=True``)
    writes only scans approved for the run's current evaluation id, and any flagged
    scan blocks it unless ``drop_flagged`` (or ``export.drop_flagged``) is set.

    Args:
        run_dir: the run folder.
        fmt: "nifti", "dicom" (single-frame series) or "dicom-enhanced" (one
            multi-frame file per volume, needs highdicom).
        out_dir: destination; defaults to ``run_dir/export/<fmt>`` for staging and
            ``run_dir/release/<fmt>`` for a release.
        approved_only: apply the release policy.
        staging: apply the staging policy; must be True unless ``approved_only``.
        drop_flagged: release without flagged scans; None takes the run config.

    Raises:
        ConfigError: unknown format or policy combination, or an unusable destination.
        InputError: a run file is missing, malformed or changed since generation.
        ReviewError: the release policy is not satisfied.
        LeakError: the export contains an identifier of the source cohort; nothing is
            written.
    """
    run_dir = Path(run_dir)
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    if not approved_only and not staging:
        raise ConfigError("an export that is not a staging export must be a release; pass approved_only=True (--approved-only)")
    from medgan.data.preprocess import canonical_affine

    if fmt == "dicom-enhanced" and not enhanced_available():
        raise ConfigError("format dicom-enhanced needs highdicom; install it (pip install highdicom) or use format dicom")
    inputs = load_run_inputs(run_dir)
    settings = inputs.export_config
    if drop_flagged is None:
        drop_flagged = settings.drop_flagged
    if out_dir is None:
        out_dir = run_dir / ("release" if approved_only else "export") / fmt
    out_dir = Path(out_dir).absolute()

    kept, left_out, uncovered, review = _select(run_dir, inputs, approved_only, drop_flagged)
    identifiers = identifiers_from_run(run_dir)
    preprocess = _preprocess_config(inputs, run_dir)
    grid, spacing = preprocess.grid, preprocess.spacing_mm
    affine = canonical_affine(preprocess)
    warnings: list[str] = []
    modalities: set[str] = set()
    saturated_total = 0
    written: list[str] = []
    exported_index: list[dict[str, Any]] = []

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_dir.with_name(f".{out_dir.name}.tmp-{secrets.token_hex(4)}")
    temporary.mkdir()
    try:
        head_scans: list[str] = []
        for series_number, entry in enumerate(kept, start=1):
            name = Path(entry["file"]).name
            modality = _modality(inputs, entry, run_dir)
            modalities.add(modality)
            raw_values = _load_synthetic(run_dir / "synthetic" / name, entry, affine, grid)
            values, saturated = saturate(raw_values, modality, preprocess)
            saturated_total += saturated
            if _is_head_scan(inputs, entry) and not settings.faces_removed:
                head_scans.append(name)
            record = _write_volume(values, affine, temporary, fmt, entry, modality, settings, preprocess, series_number)
            written.append(record["exported"])
            exported_index.append(record)
        write_json_atomic(temporary / "index.json", exported_index)
        if head_scans:
            warnings.append(
                f"{len(head_scans)} head scan(s) without face removal (first: {head_scans[0]}): a synthetic face may "
                "resemble a real person, so they are marked RecognizableVisualFeatures YES"
            )

        intensity = _intensity_section(fmt, sorted(modalities), preprocess, saturated_total, settings)
        geometry = {
            "grid": [grid, grid, grid],
            "spacing_mm": spacing,
            "affine": affine.tolist(),
            "note": "every volume uses the profile's canonical RAS+ grid centred at the origin; no real scan's affine is used",
        }
        generator = run_dir / "generator" / "generator.safetensors"
        card = build_card(
            report=inputs.report,
            config=inputs.config,
            generator_sha256=sha256_file(generator) if generator.is_file() else None,
            fmt=fmt,
            release=approved_only,
            written=written,
            left_out=left_out,
            uncovered_steps=uncovered,
            review=review,
            intensity=intensity,
            geometry=geometry,
            warnings=warnings,
        )
        write_json_atomic(temporary / "dataset_card.json", card)
        write_text_atomic(temporary / "DATASET_CARD.md", render_markdown(card))

        findings = scan_folder(temporary, identifiers)
        if findings:
            listing = "; ".join(str(finding) for finding in findings[:10])
            more = f" and {len(findings) - 10} more" if len(findings) > 10 else ""
            raise LeakError(
                f"export to {out_dir} stopped: the leak scanner found {len(findings)} identifier(s) of the source "
                f"cohort ({listing}{more}); nothing was written"
            )
        _replace_folder(temporary, out_dir)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)

    for warning in warnings:
        logger.warning("export: %s", warning)
    logger.info("export: %d scans written to %s, %d left out", len(written), out_dir, len(left_out))
    return ExportSummary(out_dir=out_dir, written=written, left_out=left_out, card_path=out_dir / "dataset_card.json", warnings=warnings)
