"""medgan inspect and medgan validate through the click entry point."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
from click.testing import CliRunner
from .ingest_fixtures import save_nifti, write_series

from medgan.cli.main import cli


def _run(*args):
    return CliRunner().invoke(cli, list(args))


def test_inspect_json(tmp_path, ramp):
    write_series(tmp_path / "s", ramp, spacing=(0.5, 0.7, 2.0), origin=(10.0, 20.0, 30.0))
    result = _run("inspect", str(tmp_path / "s"), "--json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["shape"] == [8, 6, 5]
    assert facts["spacing_mm"] == [0.5, 0.7, 2.0]
    assert facts["orientation"] == "LPS"
    assert facts["intensity_range"] == [0.0, 457.0]
    assert facts["modality"] == "CT"
    assert facts["n_slices"] == 5
    assert facts["affine"][0] == [-0.5, 0.0, 0.0, -10.0]


def test_inspect_table(tmp_path):
    save_nifti(tmp_path / "a.nii.gz", np.arange(64, dtype=np.float32).reshape(4, 4, 4), np.diag([2.0, 2.0, 3.0, 1.0]))
    result = _run("inspect", str(tmp_path / "a.nii.gz"), "--modality", "MR")
    assert result.exit_code == 0, result.output
    assert "2 x 2 x 3 mm" in result.stdout
    assert "RAS" in result.stdout


def test_inspect_invalid_exits_nonzero(tmp_path):
    save_nifti(tmp_path / "a.nii.gz", np.ones((4, 4, 4, 3), np.float32))
    result = _run("inspect", str(tmp_path / "a.nii.gz"))
    assert result.exit_code == 2
    assert "expected one 3D volume" in result.stderr


def test_validate_lists_every_problem(tmp_path):
    save_nifti(tmp_path / "good.nii.gz", np.arange(512, dtype=np.float32).reshape(8, 8, 8))
    save_nifti(tmp_path / "nan.nii.gz", np.full((8, 8, 8), np.nan, np.float32))
    save_nifti(tmp_path / "four_d.nii.gz", np.ones((8, 8, 8, 2), np.float32))
    write_series(tmp_path / "gap", np.ones((4, 4, 4), np.int16), positions=[(0, 0, 0), (0, 0, 1), (0, 0, 3), (0, 0, 4)])
    (tmp_path / "m.csv").write_text(
        "path,patient_id,modality,split,site\n"
        "good.nii.gz,P1,MR,train,a\nnan.nii.gz,P2,MR,train,a\nfour_d.nii.gz,P3,MR,holdout,b\ngap,P4,CT,holdout,b\n",
        encoding="utf-8",
    )
    result = _run("validate", str(tmp_path / "m.csv"))
    assert result.exit_code == 2
    assert "3 problem(s) in 4 scan(s)" in result.stderr
    assert "line 3:" in result.stderr
    assert "line 4:" in result.stderr
    assert "line 5:" in result.stderr
    assert "4 scan(s) of 4 patient(s)" in result.stdout
    assert "holdout: 2 patient(s), 2 scan(s)" in result.stdout


def test_validate_ok_folder(tmp_path):
    save_nifti(tmp_path / "a.nii.gz", np.arange(512, dtype=np.float32).reshape(8, 8, 8))
    write_series(tmp_path / "s", np.arange(48, dtype=np.int16).reshape(4, 4, 3) - 1000)
    result = _run("validate", str(tmp_path), "--modality", "MR")
    assert result.exit_code == 0, result.output
    assert "modality {'CT': 1, 'MR': 1}" in result.stdout
    assert "ok: all 2 scan(s) load" in result.stdout


def test_validate_duplicate_content(tmp_path):
    data = np.arange(512, dtype=np.float32).reshape(8, 8, 8)
    save_nifti(tmp_path / "a.nii.gz", data)
    (tmp_path / "b.nii.gz").write_bytes((tmp_path / "a.nii.gz").read_bytes())
    result = _run("validate", str(tmp_path), "--modality", "MR")
    assert result.exit_code == 2
    assert "same content as" in result.stderr


def test_validate_names_gzip_problems(tmp_path):
    data = np.random.default_rng(0).normal(size=(32, 32, 32)).astype(np.float32)
    save_nifti(tmp_path / "plain.nii", data)
    (tmp_path / "plain.nii").rename(tmp_path / "mislabelled.nii.gz")
    save_nifti(tmp_path / "cut.nii.gz", data)
    (tmp_path / "cut.nii.gz").write_bytes((tmp_path / "cut.nii.gz").read_bytes()[:20000])
    save_nifti(tmp_path / "short.nii.gz", data)
    plain = gzip.decompress((tmp_path / "short.nii.gz").read_bytes())
    (tmp_path / "short.nii.gz").write_bytes(gzip.compress(plain[:10000]))
    result = _run("validate", str(tmp_path), "--modality", "MR")
    assert result.exit_code == 2
    assert "2 problem(s) in 3 scan(s)" in result.stderr
    assert "cut.nii.gz: the gzip stream is truncated" in result.stderr
    assert "short.nii.gz: the data section is shorter" in result.stderr
    assert "not gzip-compressed despite its .gz name" in result.stdout


def test_validate_patient_in_both_splits(tmp_path):
    save_nifti(tmp_path / "a.nii.gz", np.arange(512, dtype=np.float32).reshape(8, 8, 8))
    save_nifti(tmp_path / "b.nii.gz", np.arange(512, dtype=np.float32).reshape(8, 8, 8) * 2)
    (tmp_path / "m.csv").write_text("path,patient_id,modality,split\na.nii.gz,P1,MR,train\nb.nii.gz,P1,MR,holdout\n", encoding="utf-8")
    result = _run("validate", str(tmp_path / "m.csv"))
    assert result.exit_code == 2
    assert "both 'train' and 'holdout'" in result.stderr


def test_validate_manifest_and_file_problems(tmp_path):
    save_nifti(tmp_path / "good.nii.gz", np.arange(512, dtype=np.float32).reshape(8, 8, 8))
    save_nifti(tmp_path / "four_d.nii.gz", np.ones((8, 8, 8, 2), np.float32))
    (tmp_path / "m.csv").write_text(
        "path,patient_id,modality\ngood.nii.gz,P1,MR\nmissing.nii.gz,P2,MR\nfour_d.nii.gz,P3,MR\n", encoding="utf-8"
    )
    result = _run("validate", str(tmp_path / "m.csv"))
    assert result.exit_code == 2
    assert "2 problem(s) in 2 scan(s)" in result.stderr
    assert "missing.nii.gz does not exist" in result.stderr
    assert "line 4:" in result.stderr


def test_validate_strict_counts_warnings(tmp_path):
    image = nib.Nifti1Image(np.arange(512, dtype=np.float32).reshape(8, 8, 8), None)
    image.header.set_qform(None, code=0)
    image.header.set_sform(None, code=0)
    nib.save(image, tmp_path / "a.nii.gz")
    relaxed = _run("validate", str(tmp_path), "--modality", "MR")
    strict = _run("validate", str(tmp_path), "--modality", "MR", "--strict")
    assert relaxed.exit_code == 0, relaxed.output
    assert strict.exit_code == 2
    assert "no world orientation" in strict.stderr


def test_inspect_nonfinite_replace(tmp_path):
    data = np.ones((4, 4, 4), np.float32)
    data[0, 0, 0] = np.nan
    save_nifti(tmp_path / "a.nii.gz", data)
    assert _run("inspect", str(tmp_path / "a.nii.gz")).exit_code == 2
    result = _run("inspect", str(tmp_path / "a.nii.gz"), "--nonfinite", "replace", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["intensity_range"] == [0.0, 1.0]
