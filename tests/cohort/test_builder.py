"""Cohort builder: determinism, manifest, balance, lesion effect and input checks."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.cohort import CohortSpec, build_cohort, load_template, plan_cohort, read_cohort_info, render_patient
from medgan.cohort.builder import replace_lesion
from medgan.cohort.deformations import bias_field
from medgan.cohort.template import WM_REFERENCE
from medgan.data.manifest import load_manifest
from medgan.data.pseudonym import Pseudonymizer
from medgan.errors import ConfigError, InputError

STILL = {"scale": 0.0, "rotation_deg": 0.0, "shift_mm": 0.0, "deformation_mm": 0.0, "bias_strength": 0.0, "gain_sigma": 0.0, "noise_std": 0.0}


def _hashes(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*")) if path.is_file()}


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_build_same_seed_same_bytes(tiny_cohort: Path, tiny_options: dict, tmp_path: Path) -> None:
    build_cohort(tmp_path / "again", **tiny_options)
    assert _hashes(tmp_path / "again") == _hashes(tiny_cohort)


def test_build_other_seed_other_bytes(tiny_cohort: Path, tiny_options: dict, tmp_path: Path) -> None:
    build_cohort(tmp_path / "other", **{**tiny_options, "seed": tiny_options["seed"] + 1})
    first = _hashes(tiny_cohort)
    second = _hashes(tmp_path / "other")
    assert first["images/sim-00000_s0.nii.gz"] != second["images/sim-00000_s0.nii.gz"]


@pytest.mark.slow
def test_build_workers_same_bytes(tiny_cohort: Path, tiny_options: dict, tmp_path: Path) -> None:
    build_cohort(tmp_path / "parallel", **tiny_options, workers=2)
    assert _hashes(tmp_path / "parallel") == _hashes(tiny_cohort)


def test_build_file_count(tiny_cohort: Path) -> None:
    assert len(list((tiny_cohort / "images").glob("*.nii.gz"))) == 48
    assert len(list((tiny_cohort / "masks").glob("*.nii.gz"))) == 48


def test_manifest_loads(tiny_cohort: Path) -> None:
    cohort = load_manifest(tiny_cohort / "manifest.csv", Pseudonymizer(b"k" * 32))
    assert len(cohort.scans) == 48
    assert len(cohort.patients()) == 24
    assert cohort.label_names == ["lesion"]
    assert cohort.label_values == {"lesion": ["absent", "present"]}
    assert {scan.modality for scan in cohort.scans} == {"MR"}


def test_manifest_scans_share_patient(tiny_cohort: Path) -> None:
    cohort = load_manifest(tiny_cohort / "manifest.csv", Pseudonymizer(b"k" * 32))
    by_patient: dict[str, list] = defaultdict(list)
    for scan in cohort.scans:
        by_patient[scan.patient_id].append(scan)
    assert sorted(len(scans) for scans in by_patient.values()) == [2] * 24
    assert all(len({scan.labels["lesion"] for scan in scans}) == 1 for scans in by_patient.values())
    assert all(len({scan.split for scan in scans}) == 1 for scans in by_patient.values())


def test_splits_holdout_count(tiny_cohort: Path) -> None:
    patients = {row["patient_id"]: row["split"] for row in _rows(tiny_cohort)}
    assert Counter(patients.values()) == {"train": 19, "holdout": 5}


def test_labels_balanced_per_split(tiny_cohort: Path) -> None:
    patients = {row["patient_id"]: (row["split"], row["lesion"]) for row in _rows(tiny_cohort)}
    counts = Counter(patients.values())
    # round(0.5 * 19) == 10 (banker's rounding would give 10 as well), round(0.5 * 5) == 2.
    assert counts[("train", "present")] == round(0.5 * 19)
    assert counts[("holdout", "present")] == round(0.5 * 5)


def test_labels_fraction_zero(tmp_path: Path) -> None:
    build_cohort(tmp_path / "c", 6, 0, 16, lesion_fraction=0.0, write_masks=False)
    assert {row["lesion"] for row in _rows(tmp_path / "c")} == {"absent"}


def test_canaries_are_train_patients(tiny_cohort: Path) -> None:
    info = read_cohort_info(tiny_cohort)
    canaries = [patient for patient in info["patients"] if patient["canary"]]
    assert len(canaries) == 2
    assert {patient["split"] for patient in canaries} == {"train"}


def test_nifti_geometry(tiny_cohort: Path) -> None:
    image = nib.load(str(tiny_cohort / "images" / "sim-00000_s0.nii.gz"))
    assert image.shape == (16, 16, 16)
    assert image.get_data_dtype() == np.float32
    assert np.allclose(np.diag(image.affine)[:3], [12.0, 12.0, 12.0])
    assert np.allclose(image.affine, np.array(read_cohort_info(tiny_cohort)["affine"]))


def test_masks_follow_label(tiny_cohort: Path) -> None:
    info = read_cohort_info(tiny_cohort)
    for patient in info["patients"]:
        mask = np.asarray(nib.load(str(tiny_cohort / patient["scans"][0]["mask"])).dataobj)
        assert (mask.sum() > 0) == (patient["lesion"] == "present"), patient["patient_id"]


def test_still_cohort_equals_template(tmp_path: Path) -> None:
    build_cohort(tmp_path / "c", 4, 0, 16, lesion_fraction=0.0, **STILL)
    template = load_template(16)
    volume = np.asarray(nib.load(str(tmp_path / "c" / "images" / "sim-00001_s0.nii.gz")).dataobj)
    assert np.allclose(volume, template.t1, atol=1e-3)


def test_lesion_contrast_exact_without_noise() -> None:
    spec = CohortSpec.parse(n_patients=4, seed=5, grid=16, lesion_fraction=1.0, lesion_contrast=0.4, noise_std=0.0)
    template = load_template(16)
    plan = plan_cohort(spec, template)[0]
    with_lesion = render_patient(plan, template, spec)[0]
    without = render_patient(replace_lesion(plan, None), template, spec)[0]
    scan = plan.scans[0]
    # The warp is linear in the image, so the difference is the warped lesion weight
    # times the contrast, scaled by this scan's bias field and gain.
    expected = 0.4 * WM_REFERENCE * with_lesion.lesion_weight * bias_field(scan.bias_coefficients, 16) * scan.gain
    assert with_lesion.lesion_weight.max() > 0.5
    assert np.allclose(with_lesion.volume - without.volume, expected, atol=0.05)


def test_lesion_contrast_measured_with_noise() -> None:
    spec = CohortSpec.parse(n_patients=4, seed=5, grid=32, lesion_fraction=1.0, lesion_contrast=0.5, bias_strength=0.0, gain_sigma=0.0)
    template = load_template(32)
    plan = plan_cohort(spec, template)[1]
    with_lesion = render_patient(plan, template, spec)[0]
    without = render_patient(replace_lesion(plan, None), template, spec)[0]
    weight = with_lesion.lesion_weight
    lesion = weight >= 0.5
    # Least-squares contrast of the paired difference against the lesion weight.
    measured = float(((with_lesion.volume - without.volume) * weight)[lesion].sum() / (weight * weight)[lesion].sum())
    assert lesion.sum() >= 8
    assert measured == pytest.approx(0.5 * WM_REFERENCE, rel=0.02)


def test_lesion_lies_in_white_matter() -> None:
    spec = CohortSpec.parse(n_patients=8, seed=2, grid=32, lesion_fraction=1.0, **STILL)
    template = load_template(32)
    for plan in plan_cohort(spec, template):
        i, j, k = np.round(plan.lesion.centre).astype(int)
        assert template.wm[i, j, k] > 0.4, plan.patient_id


def test_build_rejects_nonempty_folder(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        build_cohort(tmp_path / "c", 4, 0, 16)


def test_build_failure_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="lacks"):
        build_cohort(tmp_path / "c", 4, 0, 16, template_dir=tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"grid": 24}, "grid must be one of"),
        ({"n_canaries": 4}, "exceeds the 3 training patients"),
        ({"holdout_fraction": 0.9}, "leaves no training patient"),
        ({"lesion_radius_mm": (10.0, 5.0)}, "low <= high"),
        ({"noise_sdt": 0.1}, "noise_sdt"),
    ],
    ids=["grid", "canaries", "holdout", "radius", "typo"],
)
def test_spec_rejects(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CohortSpec.parse(n_patients=4, seed=0, **options)


def test_patient_anatomy_independent_of_size() -> None:
    small = plan_cohort(CohortSpec.parse(n_patients=10, seed=1, grid=16))[3]
    large = plan_cohort(CohortSpec.parse(n_patients=20, seed=1, grid=16, n_canaries=2))[3]
    assert np.array_equal(small.warp.control_mm, large.warp.control_mm)
    assert np.array_equal(small.warp.matrix, large.warp.matrix)
    assert np.array_equal(small.scans[0].bias_coefficients, large.scans[0].bias_coefficients)
