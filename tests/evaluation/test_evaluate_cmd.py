"""``medgan evaluate`` on folders of NIfTI files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from .phantoms import make_phantoms

from medgan.cli.main import cli


def _write_folder(folder, volumes, prefix):
    folder.mkdir(parents=True)
    for index, volume in enumerate(volumes):
        data = ((volume[0] + 1.0) * 500.0).astype(np.float32)  # MR-like intensities
        nib.save(nib.Nifti1Image(data, np.diag([4.0, 4.0, 4.0, 1.0])), str(folder / f"{prefix}{index:02d}.nii.gz"))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    volumes = make_phantoms(14, 16, 3)
    _write_folder(root / "patients-train", volumes[:6], "subject-")
    _write_folder(root / "patients-holdout", volumes[6:9], "subject-h")
    synthetic = np.concatenate([volumes[:1], volumes[9:]])  # the first synthetic scan copies a training scan
    _write_folder(root / "generated", synthetic, "sample-")
    out = root / "out"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate", "--train", str(root / "patients-train"), "--holdout", str(root / "patients-holdout"),
            "--synthetic", str(root / "generated"), "--out", str(out), "--modality", "MR", "--grid", "16",
            "--spacing-mm", "4", "--bootstrap", "20", "--no-progress",
        ],
    )
    return result, out


def test_evaluate_cmd_copy_exit_status(evaluated):
    result, _ = evaluated
    assert result.exit_code == 3, result.output


def test_evaluate_cmd_flags_copy(evaluated):
    _, out = evaluated
    report = json.loads((out / "evaluation.json").read_text())
    assert [entry["synthetic"] for entry in report["memorization"]["flagged"]] == ["sample-00.nii.gz"]


def test_evaluate_cmd_public_files_pseudonymous(evaluated):
    _, out = evaluated
    text = (out / "evaluation.json").read_text() + (out / "evaluation.html").read_text()
    assert "subject-" not in text
    assert "patients-" not in text


def test_evaluate_cmd_id_map_private(evaluated):
    _, out = evaluated
    assert any("subject-00" in path for path in json.loads((out / "private" / "id_map.json").read_text()).values())


def test_evaluate_cmd_missing_folder_exit_two(tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", "--train", str(tmp_path / "none"), "--holdout", str(tmp_path), "--synthetic", str(tmp_path)])
    assert result.exit_code == 2
