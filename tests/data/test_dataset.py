"""prepare_cohort: content-keyed caching, collected errors and a cache free of identifiers."""

from __future__ import annotations

import numpy as np
import pytest
from .ingest_fixtures import save_nifti, write_series

import medgan.data.dataset as dataset_module
from medgan.data.config import DataConfig, PreprocessConfig
from medgan.data.dataset import prepare_cohort
from medgan.data.discover import cohort_from_path
from medgan.data.manifest import load_manifest
from medgan.data.pseudonym import Pseudonymizer
from medgan.errors import InputError

PROFILE = PreprocessConfig(grid=16, spacing_mm=4.0)
PSEUDONYMIZER = Pseudonymizer(b"k" * 32)


def _cohort(tmp_path, rows):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,patient_id,modality,split,site\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return load_manifest(manifest, PSEUDONYMIZER), DataConfig(manifest=manifest)


def _scans(tmp_path):
    rng = np.random.default_rng(0)
    save_nifti(tmp_path / "brain.nii.gz", rng.normal(100, 20, (12, 12, 10)).astype(np.float32), np.diag([3.0, 3.0, 4.0, 1.0]))
    write_series(tmp_path / "Doe_Jane_MRN0042", (rng.normal(0, 300, (10, 10, 6))).astype(np.int16), spacing=(3.0, 3.0, 4.0))
    return _cohort(tmp_path, ["brain.nii.gz,P1,MR,train,a", "Doe_Jane_MRN0042,P2,CT,holdout,b"])


class _CountingLoader:
    def __init__(self, monkeypatch):
        self.calls = 0
        original = dataset_module.load_volume

        def counting(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(dataset_module, "load_volume", counting)


def test_prepared_fields(tmp_path):
    cohort, data = _scans(tmp_path)
    prepared = prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    assert [scan.modality for scan in prepared.scans] == ["MR", "CT"]
    assert [scan.split for scan in prepared.scans] == ["train", "holdout"]
    assert prepared.scans[1].labels == {"site": "b"}
    assert prepared.scans[0].array.shape == (1, 16, 16, 16)
    assert prepared.label_values == {"site": ["a", "b"]}
    assert prepared.grid == 16


def test_second_run_served_from_cache(tmp_path, monkeypatch):
    cohort, data = _scans(tmp_path)
    first = prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    counter = _CountingLoader(monkeypatch)
    second = prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    assert counter.calls == 0
    assert all(np.array_equal(a.array, b.array) for a, b in zip(first.scans, second.scans))


def test_changed_file_not_stale(tmp_path):
    cohort, data = _scans(tmp_path)
    first = prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    save_nifti(tmp_path / "brain.nii.gz", np.random.default_rng(1).normal(100, 20, (12, 12, 10)).astype(np.float32), np.diag([3.0, 3.0, 4.0, 1.0]))
    second = prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    assert not np.array_equal(first.scans[0].array, second.scans[0].array)
    assert np.array_equal(first.scans[1].array, second.scans[1].array)


def test_changed_profile_not_stale(tmp_path, monkeypatch):
    cohort, data = _scans(tmp_path)
    prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    counter = _CountingLoader(monkeypatch)
    prepare_cohort(cohort, data, PreprocessConfig(grid=16, spacing_mm=4.0, ct_window=(-500.0, 500.0)), tmp_path / "cache", progress=False)
    assert counter.calls == 2


def test_cache_holds_no_identifier(tmp_path):
    cohort, data = _scans(tmp_path)
    prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 4
    for path in files:
        content = path.read_bytes()
        for needle in (b"Doe", b"Jane", b"MRN0042", b"brain", str(tmp_path).encode()):
            assert needle not in content, (path.name, needle)


def test_all_problems_raised_together(tmp_path):
    save_nifti(tmp_path / "nan.nii.gz", np.full((8, 8, 8), np.nan, np.float32))
    save_nifti(tmp_path / "good.nii.gz", np.ones((8, 8, 8), np.float32))
    save_nifti(tmp_path / "four_d.nii.gz", np.ones((8, 8, 8, 3), np.float32))
    cohort, data = _cohort(tmp_path, ["nan.nii.gz,P1,MR,train,a", "good.nii.gz,P2,MR,train,a", "four_d.nii.gz,P3,MR,train,a"])
    with pytest.raises(InputError, match="2 of 3 scan") as caught:
        prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    assert "line 2" in str(caught.value)
    assert "line 4" in str(caught.value)
    assert "line 3" not in str(caught.value)


def test_unknown_nifti_modality_rejected(tmp_path):
    save_nifti(tmp_path / "a.nii.gz", np.ones((8, 8, 8), np.float32))
    cohort = cohort_from_path(tmp_path, PSEUDONYMIZER)
    with pytest.raises(InputError, match="modality is unknown"):
        prepare_cohort(cohort, DataConfig(manifest=tmp_path / "unused.csv"), PROFILE, tmp_path / "cache", progress=False)


def test_replace_policy_reaches_cache_key(tmp_path):
    data = np.ones((8, 8, 8), np.float32)
    data[1, 1, 1] = np.nan
    save_nifti(tmp_path / "a.nii.gz", data)
    cohort, config = _cohort(tmp_path, ["a.nii.gz,P1,CT,train,a"])
    replaced = DataConfig(manifest=config.manifest, nonfinite="replace", nonfinite_value=0.0)
    prepared = prepare_cohort(cohort, replaced, PROFILE, tmp_path / "cache", progress=False)
    assert np.all(np.isfinite(prepared.scans[0].array))
    with pytest.raises(InputError, match="1 non-finite voxels"):
        prepare_cohort(cohort, config, PROFILE, tmp_path / "cache", progress=False)


def test_dicom_from_folder_cached(tmp_path, monkeypatch):
    write_series(tmp_path / "scans" / "series", np.arange(300, dtype=np.int16).reshape(10, 10, 3) - 1000)
    cohort = cohort_from_path(tmp_path / "scans", PSEUDONYMIZER)
    data = DataConfig(manifest=tmp_path / "unused.csv")
    first = prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    counter = _CountingLoader(monkeypatch)
    second = prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    assert counter.calls == 0
    assert second.scans[0].modality == "CT"
    assert np.array_equal(first.scans[0].array, second.scans[0].array)


def test_profile_recorded(tmp_path):
    cohort, data = _scans(tmp_path)
    prepared = prepare_cohort(cohort, data, PROFILE, tmp_path / "cache", progress=False)
    assert sorted(prepared.profile) == ["CT", "MR"]
    assert prepared.profile["CT"]["steps"][0]["transform"] == "ScaleIntensityRange"
    assert prepared.profile["MR"]["steps"][0]["transform"] == "ScaleIntensityRangePercentiles"
    assert prepared.profile["CT"]["config"]["spacing_mm"] == 4.0
