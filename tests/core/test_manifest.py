"""Manifest parsing, pseudonymous ids and patient-level splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from medgan.data.manifest import load_manifest
from medgan.data.pseudonym import Pseudonymizer, load_or_create_salt
from medgan.errors import InputError

SALT = b"0123456789abcdef0123456789abcdef"


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def _manifest(root: Path, text: str) -> Path:
    path = root / "manifest.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_reads_pseudonymous_records(tmp_path):
    _touch(tmp_path, "a.nii.gz", "b.nii.gz")
    manifest = _manifest(tmp_path, "path,patient_id,modality,split,dx\na.nii.gz,P1,MR,train,healthy\nb.nii.gz,P2,mr,holdout,tumour\n")
    cohort = load_manifest(manifest, Pseudonymizer(SALT))
    assert [scan.split for scan in cohort.scans] == ["train", "holdout"]
    assert [scan.modality for scan in cohort.scans] == ["MR", "MR"]
    assert cohort.label_names == ["dx"]
    assert cohort.label_values == {"dx": ["healthy", "tumour"]}
    assert cohort.scans[0].patient_id == Pseudonymizer(SALT).patient_id("P1")
    assert cohort.scans[0].patient_id.startswith("pat-")
    assert "P1" not in cohort.scans[0].patient_id


def test_pseudonyms_depend_on_salt():
    first = Pseudonymizer(SALT).patient_id("P1")
    second = Pseudonymizer(b"f" * 32).patient_id("P1")
    assert first != second
    assert first == Pseudonymizer(SALT).patient_id("P1")


def test_manifest_lists_every_problem(tmp_path):
    _touch(tmp_path, "a.nii.gz")
    manifest = _manifest(
        tmp_path,
        "path,patient_id,modality,split\na.nii.gz,P1,PET,train\nmissing.nii.gz,P2,MR,train\na.nii.gz,P3,MR,test\n,P4,MR,train\n",
    )
    with pytest.raises(InputError) as error:
        load_manifest(manifest, Pseudonymizer(SALT))
    message = str(error.value)
    assert "4 problem(s)" in message
    assert "modality 'PET'" in message
    assert "missing.nii.gz does not exist" in message
    assert "line 5: empty 'path'" in message


def test_manifest_rejects_patient_in_both_splits(tmp_path):
    _touch(tmp_path, "a.nii.gz", "b.nii.gz")
    manifest = _manifest(tmp_path, "path,patient_id,modality,split\na.nii.gz,P1,MR,train\nb.nii.gz,P1,MR,holdout\n")
    with pytest.raises(InputError, match="both 'train' and 'holdout'"):
        load_manifest(manifest, Pseudonymizer(SALT))


def test_manifest_rejects_missing_column(tmp_path):
    manifest = _manifest(tmp_path, "file,patient\na.nii.gz,P1\n")
    with pytest.raises(InputError, match="no column path, patient_id"):
        load_manifest(manifest, Pseudonymizer(SALT))


def test_empty_splits_assigned_by_patient(tmp_path):
    names = [f"s{index}.nii.gz" for index in range(20)]
    _touch(tmp_path, *names)
    # Two scans per patient: both must land in the same split.
    rows = "".join(f"{name},P{index // 2},MR,\n" for index, name in enumerate(names))
    cohort = load_manifest(_manifest(tmp_path, "path,patient_id,modality,split\n" + rows), Pseudonymizer(SALT), holdout_fraction=0.2)
    splits_by_patient: dict[str, set[str]] = {}
    for scan in cohort.scans:
        splits_by_patient.setdefault(scan.patient_id, set()).add(scan.split)
    assert all(len(splits) == 1 for splits in splits_by_patient.values())
    assert len(cohort.patients("holdout")) == 2
    assert len(cohort.patients("train")) == 8


def test_salt_created_once(tmp_path):
    path = tmp_path / "private" / "salt"
    first = load_or_create_salt(path)
    assert len(first) == 32
    assert load_or_create_salt(path) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_manifest_rejects_misspelt_reserved_column(tmp_path):
    _touch(tmp_path, "a.nii.gz")
    manifest = _manifest(tmp_path, "path,patient_id,modality,splt,dx\na.nii.gz,P1,MR,train,healthy\n")
    with pytest.raises(InputError, match=r"'splt' \(did you mean 'split'\?\)"):
        load_manifest(manifest, Pseudonymizer(SALT))


def test_manifest_rejects_capitalised_reserved_column(tmp_path):
    _touch(tmp_path, "a.nii.gz")
    manifest = _manifest(tmp_path, "path,patient_id,modality,Split\na.nii.gz,P1,MR,train\n")
    with pytest.raises(InputError, match=r"'Split' \(did you mean 'split'\?\)"):
        load_manifest(manifest, Pseudonymizer(SALT))


def test_manifest_rejects_label_case_variants(tmp_path):
    _touch(tmp_path, "a.nii.gz", "b.nii.gz")
    manifest = _manifest(tmp_path, "path,patient_id,modality,dx\na.nii.gz,P1,MR,chest_ct\nb.nii.gz,P2,MR,Chest_CT\n")
    with pytest.raises(InputError, match="several ways"):
        load_manifest(manifest, Pseudonymizer(SALT))
