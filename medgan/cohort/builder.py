"""Build a deterministic simulated cohort from the ICBM152 template.

Each patient is the template under a random affine and smooth deformation, optionally
with a white-matter lesion (the condition label) and a canary.  Each of its scans adds
its own bias field, gain and Rician noise.  All randomness comes from generators seeded
by ``(seed, role, patient, scan)``, so the same specification writes the same bytes.  A
patient's deformation and lesion geometry depend only on the seed and its index, so
they stay the same when the cohort grows or gets more canaries (its split and label
may change, because those are drawn for the whole cohort).

The folder written::

    manifest.csv          path, patient_id, modality, split, lesion
    cohort.json           specification, template hashes, grid and per-patient truth
    images/sim-00000_s0.nii.gz ...
    masks/sim-00000_s0_lesion.nii.gz ...   (uint8, lesion weight >= 0.5)
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from medgan.cohort.canaries import CANARY, canary_kernel, canary_positions, plant_canary
from medgan.cohort.deformations import Warp, add_rician_noise, apply_warp, bias_field, draw_bias_coefficients, draw_warp, warp_coordinates
from medgan.cohort.lesions import Lesion, draw_lesion, lesion_candidates, lesion_profile
from medgan.cohort.template import GRIDS, WM_REFERENCE, TemplateGrid, load_template
from medgan.configbase import Section
from medgan.errors import ConfigError
from medgan.export.nifti import save_nifti
from medgan.fileio import write_json_atomic, write_text_atomic

__all__ = [
    "CohortSpec",
    "PatientPlan",
    "ScanPlan",
    "plan_cohort",
    "render_patient",
    "build_cohort",
    "read_cohort_info",
    "LABEL_COLUMN",
    "COHORT_FORMAT",
]

logger = logging.getLogger(__name__)

LABEL_COLUMN = "lesion"
COHORT_FORMAT = "medgan-cohort/1"
# Roles in the seed tuple, so the streams of the split assignment, of patients and of
# scans never overlap.
_ROLE_ASSIGNMENT = 0
_ROLE_PATIENT = 1
_ROLE_SCAN = 2


class CohortSpec(Section):
    """Everything that determines a simulated cohort; the same spec gives the same bytes."""

    n_patients: int = Field(ge=2, description="Number of patients.")
    seed: int = Field(ge=0, description="Seed of every random draw.")
    grid: int = Field(32, description="Edge of the cubic grid in voxels (16, 32, 64 or 128) over a 192 mm field of view.")
    scans_per_patient: int = Field(1, ge=1, le=32, description="Scans per patient; they share anatomy, lesion and canary.")
    n_canaries: int = Field(0, ge=0, description="Training patients that carry the canary pattern.")
    holdout_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of patients in the holdout split.")
    lesion_fraction: float = Field(0.5, ge=0.0, le=1.0, description="Share of patients, per split, with a lesion.")
    lesion_radius_mm: tuple[float, float] = Field(
        (20.0, 30.0), description="Range of the lesion semi-axes in mm; at 16^3 (12 mm voxels) smaller lesions vanish in partial volume."
    )
    lesion_contrast: float = Field(1.0, gt=-1.0, description="Lesion intensity above tissue, as a fraction of white matter.")
    canary_contrast: float = Field(1.0, gt=0.0, description="Bright-cell intensity of the canary, as a fraction of white matter.")
    scale: float = Field(0.05, ge=0.0, lt=0.5, description="Maximum relative head-size change per axis.")
    rotation_deg: float = Field(4.0, ge=0.0, le=45.0, description="Maximum rotation per axis in degrees.")
    shift_mm: float = Field(4.0, ge=0.0, le=30.0, description="Maximum translation per axis in mm.")
    deformation_mm: float = Field(3.0, ge=0.0, le=20.0, description="Standard deviation of the smooth deformation in mm.")
    bias_strength: float = Field(0.1, ge=0.0, le=1.0, description="Standard deviation of the log bias-field coefficients.")
    gain_sigma: float = Field(0.1, ge=0.0, le=1.0, description="Standard deviation of the log gain per scan.")
    noise_std: float = Field(0.03, ge=0.0, le=1.0, description="Rician noise sigma as a fraction of white matter.")
    write_masks: bool = Field(True, description="Write a uint8 lesion mask per scan under masks/.")

    @field_validator("grid")
    @classmethod
    def _grid_supported(cls, value: int) -> int:
        if value not in GRIDS:
            raise ValueError(f"grid must be one of {', '.join(map(str, GRIDS))}")
        return value

    @field_validator("lesion_radius_mm")
    @classmethod
    def _radius_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError("lesion_radius_mm must be (low, high) with 0 < low <= high")
        return value

    @model_validator(mode="after")
    def _splits_fit(self) -> CohortSpec:
        n_holdout = int(round(self.holdout_fraction * self.n_patients))
        n_train = self.n_patients - n_holdout
        if n_train < 1:
            raise ValueError(f"holdout_fraction {self.holdout_fraction} leaves no training patient of {self.n_patients}")
        if self.n_canaries > n_train:
            raise ValueError(f"n_canaries {self.n_canaries} exceeds the {n_train} training patients; canaries are training patients")
        return self

    @classmethod
    def parse(cls, **options: Any) -> CohortSpec:
        """Validate ``options`` into a spec.

        Raises:
            ConfigError: an option is unknown or invalid; every problem is listed.
        """
        try:
            return cls.model_validate(options)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, item['loc'])) or 'spec'}: {item['msg']} (got {item.get('input')!r})" for item in error.errors())
            raise ConfigError(f"invalid cohort specification: {problems}") from None


@dataclass(frozen=True)
class ScanPlan:
    """Acquisition variation of one scan."""

    index: int
    bias_coefficients: np.ndarray
    gain: float
    noise_seed: tuple[int, ...]


@dataclass(frozen=True)
class PatientPlan:
    """Everything drawn for one patient; :func:`render_patient` turns it into volumes."""

    index: int
    patient_id: str
    split: str
    warp: Warp
    lesion: Lesion | None
    canary_corner: tuple[int, int, int] | None
    scans: tuple[ScanPlan, ...]


def _patient_ids(n: int) -> list[str]:
    width = max(5, len(str(n - 1)))
    return [f"sim-{index:0{width}d}" for index in range(n)]


def _assign(spec: CohortSpec) -> tuple[list[str], list[bool], list[bool]]:
    """Return per-patient split, lesion flag and canary flag.

    Canaries are drawn first and always train; holdout patients come next from the
    same permutation.  Lesions are assigned per split, ``round(lesion_fraction * size)``
    patients each, so both splits are balanced as configured.
    """
    rng = np.random.default_rng([spec.seed, _ROLE_ASSIGNMENT])
    n = spec.n_patients
    order = rng.permutation(n)
    n_holdout = int(round(spec.holdout_fraction * n))
    canaries = set(order[: spec.n_canaries].tolist())
    holdout = set(order[spec.n_canaries : spec.n_canaries + n_holdout].tolist())
    splits = ["holdout" if index in holdout else "train" for index in range(n)]
    lesions = [False] * n
    for split in ("train", "holdout"):
        members = np.array([index for index in range(n) if splits[index] == split], dtype=int)
        if len(members) == 0:
            continue
        chosen = rng.permutation(members)[: int(round(spec.lesion_fraction * len(members)))]
        for index in chosen.tolist():
            lesions[index] = True
    return splits, lesions, [index in canaries for index in range(n)]


def _draw_patient(spec: CohortSpec, template: TemplateGrid, index: int, patient_id: str, split: str, has_lesion: bool, has_canary: bool) -> PatientPlan:
    rng = np.random.default_rng([spec.seed, _ROLE_PATIENT, index])
    warp = draw_warp(rng, scale=spec.scale, rotation_deg=spec.rotation_deg, shift_mm=spec.shift_mm, deformation_mm=spec.deformation_mm)
    # Always draw the lesion, so the patient's later draws do not depend on its label.
    margin = spec.lesion_radius_mm[1] / template.spacing_mm
    candidates = lesion_candidates(template.wm, template.brain, margin)
    lesion = draw_lesion(rng, candidates, radius_mm=spec.lesion_radius_mm, contrast=spec.lesion_contrast)
    corner = None
    if has_canary:
        coordinates = warp_coordinates(warp, template.grid, template.spacing_mm)
        brain = apply_warp(template.brain, coordinates)
        positions = canary_positions(brain, canary_kernel(template.spacing_mm).shape[0])
        chosen = positions[int(rng.integers(len(positions)))]
        corner = (int(chosen[0]), int(chosen[1]), int(chosen[2]))
    scans = []
    for scan_index in range(spec.scans_per_patient):
        scan_rng = np.random.default_rng([spec.seed, _ROLE_SCAN, index, scan_index])
        coefficients = draw_bias_coefficients(scan_rng, spec.bias_strength)
        gain = float(np.exp(scan_rng.normal(0.0, spec.gain_sigma)))
        scans.append(ScanPlan(scan_index, coefficients, gain, (spec.seed, _ROLE_SCAN, index, scan_index, 1)))
    return PatientPlan(
        index=index,
        patient_id=patient_id,
        split=split,
        warp=warp,
        lesion=lesion if has_lesion else None,
        canary_corner=corner,
        scans=tuple(scans),
    )


def plan_cohort(spec: CohortSpec, template: TemplateGrid | None = None, template_dir: str | Path | None = None) -> list[PatientPlan]:
    """Draw every patient's parameters, without rendering any volume."""
    template = template or load_template(spec.grid, template_dir)
    splits, lesions, canaries = _assign(spec)
    return [
        _draw_patient(spec, template, index, patient_id, splits[index], lesions[index], canaries[index])
        for index, patient_id in enumerate(_patient_ids(spec.n_patients))
    ]


@dataclass(frozen=True)
class RenderedScan:
    """One rendered scan and its lesion weight, both (G, G, G) float32."""

    volume: np.ndarray
    lesion_weight: np.ndarray


def render_patient(plan: PatientPlan, template: TemplateGrid, spec: CohortSpec) -> list[RenderedScan]:
    """Render every scan of a patient; a pure function of the plan, template and spec.

    Order of operations: the lesion is added to the template, the sum is warped, the
    canary is planted on the warped anatomy (so it keeps its exact shape), then each
    scan multiplies by its bias field and gain and adds Rician noise.
    """
    grid, spacing = template.grid, template.spacing_mm
    coordinates = warp_coordinates(plan.warp, grid, spacing)
    anatomy = np.array(template.t1, dtype=np.float32)
    weight = np.zeros_like(anatomy)
    if plan.lesion is not None:
        profile = lesion_profile(plan.lesion, grid, spacing) * (template.brain > 0.5)
        anatomy = anatomy + plan.lesion.contrast * WM_REFERENCE * profile
        weight = apply_warp(profile.astype(np.float32), coordinates)
    clean = apply_warp(anatomy, coordinates)
    if plan.canary_corner is not None:
        clean = plant_canary(clean, plan.canary_corner, canary_kernel(spacing), spec.canary_contrast * WM_REFERENCE)
    clean = np.maximum(clean, 0.0)
    scans = []
    for scan in plan.scans:
        biased = clean * bias_field(scan.bias_coefficients, grid) * scan.gain
        noisy = add_rician_noise(biased, np.random.default_rng(list(scan.noise_seed)), spec.noise_std * WM_REFERENCE)
        scans.append(RenderedScan(volume=noisy, lesion_weight=weight))
    return scans


def _voxel_to_mm(affine: np.ndarray, voxel: np.ndarray) -> list[float]:
    return [round(float(value), 3) for value in (affine @ np.append(np.asarray(voxel, dtype=np.float64), 1.0))[:3]]


def _write_patient(plan: PatientPlan, spec: CohortSpec, template_dir: str | None, folder: str) -> dict[str, Any]:
    """Render and write one patient's files; return its truth record (manifest rows included)."""
    template = load_template(spec.grid, template_dir)
    root = Path(folder)
    label = "present" if plan.lesion is not None else "absent"
    scans = []
    for scan, rendered in zip(plan.scans, render_patient(plan, template, spec)):
        relative = f"images/{plan.patient_id}_s{scan.index}.nii.gz"
        save_nifti(rendered.volume, template.affine, root / relative, description="medgan simulated cohort")
        record = {"path": relative, "gain": round(scan.gain, 6)}
        if spec.write_masks:
            mask_path = f"masks/{plan.patient_id}_s{scan.index}_lesion.nii.gz"
            save_nifti((rendered.lesion_weight >= 0.5).astype(np.uint8), template.affine, root / mask_path, dtype=np.uint8, description="medgan lesion mask")
            record["mask"] = mask_path
        scans.append(record)
    truth: dict[str, Any] = {"patient_id": plan.patient_id, "split": plan.split, LABEL_COLUMN: label, "canary": plan.canary_corner is not None}
    if plan.lesion is not None:
        truth["lesion_centre_mm"] = _voxel_to_mm(template.affine, plan.lesion.centre)
        truth["lesion_radii_mm"] = [round(float(value), 3) for value in plan.lesion.radii_mm]
    if plan.canary_corner is not None:
        truth["canary_corner_voxel"] = list(plan.canary_corner)
    truth["scans"] = scans
    return truth


def _manifest_text(truths: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "patient_id", "modality", "split", LABEL_COLUMN])
    for truth in truths:
        for scan in truth["scans"]:
            writer.writerow([scan["path"], truth["patient_id"], "MR", truth["split"], truth[LABEL_COLUMN]])
    return buffer.getvalue()


def _prepare_destination(out_dir: Path) -> Path:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"output folder {out_dir} already exists and is not empty; choose a new folder or remove it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".building", dir=out_dir.parent))


def build_cohort(
    out_dir: str | Path,
    n: int,
    seed: int,
    grid: int = 32,
    *,
    scans_per_patient: int = 1,
    n_canaries: int = 0,
    template_dir: str | Path | None = None,
    workers: int = 1,
    **options: Any,
) -> Path:
    """Build a simulated cohort in ``out_dir`` and return the path of its manifest.

    The folder is assembled under a temporary name beside ``out_dir`` and renamed at the
    end, so a failed build leaves nothing behind.  ``workers`` > 1 renders patients in
    parallel processes; the bytes do not depend on it.

    Args:
        out_dir: new (or empty) folder for the cohort.
        n: number of patients.
        seed: seed of every random draw.
        grid: 16, 32, 64 or 128 voxels per axis over 192 mm.
        scans_per_patient: scans per patient, sharing anatomy and condition.
        n_canaries: training patients that carry the canary.
        template_dir: folder of the ICBM152 files; default :func:`default_template_dir`.
        workers: processes used to render and write patients.
        **options: further :class:`CohortSpec` fields (``lesion_contrast``, ``noise_std``, ...).

    Raises:
        ConfigError: an option is invalid or ``out_dir`` is not empty.
        InputError: the template files are missing.
    """
    spec = CohortSpec.parse(n_patients=n, seed=seed, grid=grid, scans_per_patient=scans_per_patient, n_canaries=n_canaries, **options)
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    out_dir = Path(out_dir)
    template = load_template(spec.grid, template_dir)
    folder_text = str(Path(template_dir).resolve()) if template_dir is not None else None
    plans = plan_cohort(spec, template)
    staging = _prepare_destination(out_dir)
    try:
        if workers == 1:
            truths = []
            for plan in plans:
                truths.append(_write_patient(plan, spec, folder_text, str(staging)))
                if (plan.index + 1) % max(1, spec.n_patients // 10) == 0:
                    logger.info("cohort: %d of %d patients written", plan.index + 1, spec.n_patients)
        else:
            with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_write_patient, plan, spec, folder_text, str(staging)) for plan in plans]
                truths = [future.result() for future in futures]
        write_text_atomic(staging / "manifest.csv", _manifest_text(truths))
        info = {
            "format": COHORT_FORMAT,
            "spec": spec.model_dump(mode="json"),
            "template": {"name": "ICBM152 2009a symmetric T1 with GM/WM maps", "sha256": template.sha256},
            "grid": spec.grid,
            "spacing_mm": template.spacing_mm,
            "affine": template.affine.tolist(),
            "wm_reference": WM_REFERENCE,
            "label_column": LABEL_COLUMN,
            "canary": {"cells": CANARY.cells, "cell_mm": CANARY.cell_mm, "contrast": spec.canary_contrast},
            "patients": truths,
        }
        write_json_atomic(staging / "cohort.json", info)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "cohort: %d patients, %d scans at %d^3 (%.1f mm), %d canaries",
        spec.n_patients,
        spec.n_patients * spec.scans_per_patient,
        spec.grid,
        template.spacing_mm,
        spec.n_canaries,
    )
    return out_dir / "manifest.csv"


def read_cohort_info(cohort_dir: str | Path) -> dict[str, Any]:
    """Return the parsed ``cohort.json`` of a built cohort (spec, grid, per-patient truth).

    Raises:
        ConfigError: the folder has no ``cohort.json`` of this format.
    """
    path = Path(cohort_dir) / "cohort.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found; pass a folder written by 'medgan cohort build'") from None
    if info.get("format") != COHORT_FORMAT:
        raise ConfigError(f"{path} has format {info.get('format')!r}, expected {COHORT_FORMAT!r}")
    return info


def replace_lesion(plan: PatientPlan, lesion: Lesion | None) -> PatientPlan:
    """Return ``plan`` with another lesion (or none), for paired renders in tests and analyses."""
    return replace(plan, lesion=lesion)
