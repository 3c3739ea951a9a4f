"""cohort_from_path on folders, single scans and manifests."""

from __future__ import annotations

import numpy as np
import pytest
from .ingest_fixtures import save_nifti, write_series

from medgan.data.discover import cohort_from_path
from medgan.data.pseudonym import Pseudonymizer
from medgan.errors import InputError

PSEUDONYMIZER = Pseudonymizer(b"k" * 32)


def test_folder_scans_each_own_patient(tmp_path):
    save_nifti(tmp_path / "a.nii.gz", np.ones((4, 4, 4), np.float32))
    (tmp_path / "sub").mkdir()
    save_nifti(tmp_path / "sub" / "b.nii", np.ones((4, 4, 4), np.float32))
    write_series(tmp_path / "series1", np.ones((4, 4, 3), np.int16))
    write_series(tmp_path / "sub" / "series2", np.ones((4, 4, 3), np.int16), names=["1", "2", "3"])
    (tmp_path / "notes.txt").write_text("not a scan")
    cohort = cohort_from_path(tmp_path, PSEUDONYMIZER, modality="MR")
    found = sorted(scan.source_patient_id for scan in cohort.scans)
    assert found == ["a.nii.gz", "series1", "sub/b.nii", "sub/series2"]
    assert len(cohort.patients()) == 4
    assert {scan.split for scan in cohort.scans} == {"train"}


def test_folder_modality_only_for_nifti(tmp_path):
    save_nifti(tmp_path / "a.nii.gz", np.ones((4, 4, 4), np.float32))
    write_series(tmp_path / "series1", np.ones((4, 4, 3), np.int16))
    cohort = cohort_from_path(tmp_path, PSEUDONYMIZER, modality="mr")
    by_name = {scan.source_patient_id: scan.modality for scan in cohort.scans}
    assert by_name == {"a.nii.gz": "MR", "series1": None}


def test_single_file(tmp_path):
    path = save_nifti(tmp_path / "a.nii.gz", np.ones((4, 4, 4), np.float32))
    cohort = cohort_from_path(path, PSEUDONYMIZER, modality="CT")
    assert [scan.source for scan in cohort.scans] == [path]


def test_manifest_path(tmp_path):
    save_nifti(tmp_path / "a.nii.gz", np.ones((4, 4, 4), np.float32))
    (tmp_path / "m.csv").write_text("path,patient_id,modality\na.nii.gz,P1,MR\n", encoding="utf-8")
    cohort = cohort_from_path(tmp_path / "m.csv", PSEUDONYMIZER)
    assert cohort.scans[0].modality == "MR"


def test_empty_folder_rejected(tmp_path):
    with pytest.raises(InputError, match="no NIfTI file"):
        cohort_from_path(tmp_path, PSEUDONYMIZER)


def test_missing_path_rejected(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        cohort_from_path(tmp_path / "nope", PSEUDONYMIZER)


def test_folder_modality_from_medgan_index(tmp_path):
    import json

    from medgan.data.discover import cohort_from_path
    from medgan.data.pseudonym import Pseudonymizer

    for name in ("syn-0000.nii.gz", "syn-0001.nii.gz"):
        save_nifti(tmp_path / name, np.zeros((4, 4, 4), dtype=np.float32))
    index = [{"file": "syn-0000.nii.gz", "modality": "CT"}, {"file": "syn-0001.nii.gz", "modality": "MR"}]
    (tmp_path / "index.json").write_text(json.dumps(index))
    cohort = cohort_from_path(tmp_path, Pseudonymizer(b"s" * 32))
    assert sorted(scan.modality for scan in cohort.scans) == ["CT", "MR"]
