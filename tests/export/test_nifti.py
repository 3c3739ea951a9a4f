"""NIfTI export: explicit dtype, no inherited scaling, consistent qform/sform, a second reader agrees."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from medgan.errors import ConfigError
from medgan.export import export_run
from medgan.export.geometry import RAS_TO_LPS
from medgan.export.nifti import save_nifti

AFFINES = {
    "ras": np.diag([1.0, 1.0, 2.0, 1.0]),
    "las": np.diag([-1.0, 1.0, 2.0, 1.0]),
    "oblique": np.array(
        [[0.0, -1.2, 0.0, 4.0], [0.8660254, 0.0, -0.5, -3.0], [0.5, 0.0, 0.8660254, 7.0], [0.0, 0.0, 0.0, 1.0]]
    ),
}


def _sitk_affine(path: Path) -> np.ndarray:
    image = sitk.ReadImage(str(path))
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return RAS_TO_LPS @ affine


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_roundtrip_affine_and_codes(tmp_path: Path, name: str) -> None:
    array = np.random.default_rng(0).uniform(-1000, 3000, size=(4, 5, 3)).astype(np.float32)
    path = save_nifti(array, AFFINES[name], tmp_path / "v.nii.gz")
    image = nib.load(str(path))
    assert int(image.header["qform_code"]) == int(image.header["sform_code"]) == 2
    assert np.allclose(image.get_qform(), AFFINES[name], atol=1e-3)
    assert np.allclose(image.get_sform(), AFFINES[name], atol=1e-3)
    assert np.max(np.abs(_sitk_affine(path) - AFFINES[name])) < 1e-3
    assert np.array_equal(np.asarray(image.dataobj), array)


def test_float_with_int_header_not_rescaled(tmp_path: Path) -> None:
    # A source-style int16 header with a stale slope must not leak into the output.
    array = np.linspace(-1000.0, 3000.0, 27).reshape(3, 3, 3)
    path = save_nifti(array, np.eye(4), tmp_path / "v.nii.gz", dtype=np.int16)
    image = nib.load(str(path))
    slope, intercept = image.header.get_slope_inter()
    assert image.get_data_dtype() == np.int16
    assert (slope in (None, 1.0)) and (intercept in (None, 0.0))
    assert np.max(np.abs(np.asarray(image.dataobj) - array)) <= 0.5


def test_int64_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="int64"):
        save_nifti(np.zeros((2, 2, 2)), np.eye(4), tmp_path / "v.nii.gz", dtype=np.int64)


def test_int16_overflow_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="do not fit int16"):
        save_nifti(np.full((2, 2, 2), 40000.0), np.eye(4), tmp_path / "v.nii.gz", dtype=np.int16)


def test_export_int16_dtype(run_factory) -> None:
    run = run_factory(n_scans=1)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["export"]["nifti_dtype"] = "int16"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    summary = export_run(run)
    exported = nib.load(str(summary.out_dir / "syn-0000.nii.gz"))
    source = nib.load(str(run / "synthetic" / "syn-0000.nii.gz"))
    assert exported.get_data_dtype() == np.int16
    assert np.max(np.abs(np.asarray(exported.dataobj, dtype=np.float64) - np.asarray(source.dataobj))) <= 0.5


def test_export_rejects_real_affine(run_factory) -> None:
    run = run_factory(n_scans=1)
    path = run / "synthetic" / "syn-0000.nii.gz"
    image = nib.load(str(path))
    shifted = image.affine.copy()
    shifted[:3, 3] += [12.5, -40.0, 101.0]  # a scanner position, not the canonical centre
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), shifted), str(path))
    index_path = run / "synthetic" / "index.json"
    from medgan.fileio import sha256_file
    import json

    index = json.loads(index_path.read_text())
    index[0]["sha256"] = sha256_file(path)
    index_path.write_text(json.dumps(index))
    with pytest.raises(Exception, match="canonical affine"):
        export_run(run)
