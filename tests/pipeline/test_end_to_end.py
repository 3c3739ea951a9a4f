"""End-to-end runs of the whole pipeline on tiny generated cohorts and on data_samples."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.config import load_pipeline
from medgan.pipeline.runner import run_pipeline

REPO = Path(__file__).resolve().parents[2]

# Identifiers planted in the source cohort; none may appear in a public file.
REAL_PATIENT_IDS = ["SMITH_JOHN_19700101", "DOE_JANE_19650505", "ROE_RICHARD_1", "POE_EDGAR_2", "MOE_ANNA_3", "LOE_KIM_4", "KOE_LEE_5"]


def _write_cohort(root: Path) -> Path:
    """Write 7 patients (8 scans, one patient twice) of two shape conditions at 20^3."""
    rng = np.random.default_rng(0)
    rows = []
    grid = np.indices((20, 20, 20)).astype(np.float32) - 9.5
    for index, patient in enumerate(REAL_PATIENT_IDS):
        condition = "sphere" if index % 2 == 0 else "slab"
        folder = root / f"patient_{patient}"
        folder.mkdir(parents=True)
        n_scans = 2 if index == 0 else 1
        for scan in range(n_scans):
            if condition == "sphere":
                shape = (np.sqrt((grid**2).sum(axis=0)) < 6 + rng.uniform(-1, 1)).astype(np.float32)
            else:
                shape = (np.abs(grid[2]) < 3 + rng.uniform(-1, 1)).astype(np.float32)
            volume = 100.0 + 400.0 * shape + rng.normal(0, 10, size=shape.shape).astype(np.float32)
            affine = np.diag([2.0, 2.0, 2.0, 1.0])
            path = folder / f"scan{scan}.nii.gz"
            nib.save(nib.Nifti1Image(volume.astype(np.float32), affine), str(path))
            split = "holdout" if index >= 5 else "train"
            rows.append({"path": str(path.relative_to(root)), "patient_id": patient, "modality": "MR", "split": split, "shape": condition})
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def _write_pipeline(root: Path, manifest: Path, private: bool = True) -> Path:
    pipeline = root / "pipeline.yaml"
    pipeline.write_text(
        f"""
name: tiny-e2e
data:
  manifest: {manifest}
preprocess:
  grid: 16
  spacing_mm: 2.5
model:
  latent_dim: 8
  base_channels: 4
  disc_channels: 4
privacy:
  enabled: {str(private).lower()}
  target_epsilon: 8.0
  ledger_dir: {root / "ledger"}
train:
  steps: 3
  batch_size: 2
  generator_batch_size: 2
  seed: 0
  checkpoint_every: 2
  sample_every: 2
generate:
  n_per_condition: 2
evaluation:
  n_bootstrap: 20
""",
        encoding="utf-8",
    )
    return pipeline


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    root = tmp_path_factory.mktemp("cohort")
    manifest = _write_cohort(root)
    config = load_pipeline(_write_pipeline(root, manifest))
    out = tmp_path_factory.mktemp("run") / "run"
    report = run_pipeline(config, out, progress=False)
    return out, report, root


def test_report_has_required_keys(tiny_run):
    _, report, _ = tiny_run
    for key in ("epsilon", "delta", "accountant", "noise_multiplier", "sample_rate", "steps"):
        assert key in report["privacy"], key
    assert isinstance(report["fidelity"], dict)
    assert isinstance(report["memorization"]["flagged"], list)
    assert report["data"]["n_patients"] == 7


def test_report_counts_patients_not_scans(tiny_run):
    _, report, _ = tiny_run
    assert report["data"]["n_train_patients"] == 5
    assert report["data"]["n_train_scans"] == 6
    assert report["privacy"]["n_patients"] == 5
    assert report["privacy"]["sample_rate"] == pytest.approx(2 / 5)


def test_report_epsilon_recomputed_from_history(tiny_run):
    from medgan.privacy.accounting import compute_epsilon

    _, report, _ = tiny_run
    privacy = report["privacy"]
    fresh = compute_epsilon([(privacy["noise_multiplier"], privacy["sample_rate"], privacy["steps"])], privacy["delta"], privacy["accountant"])
    assert privacy["epsilon"] == pytest.approx(fresh.epsilon, rel=1e-9)


def test_synthetic_volumes_have_canonical_affine(tiny_run):
    from medgan.data.preprocess import canonical_affine

    out, report, _ = tiny_run
    files = sorted((out / "synthetic").glob("syn-*.nii.gz"))
    assert len(files) == 4  # 2 conditions x n_per_condition 2
    assert [entry["file"] for entry in report["synthetic"]] == [path.name for path in files]
    from medgan.data.config import PreprocessConfig

    expected = canonical_affine(PreprocessConfig(grid=16, spacing_mm=2.5))
    for path in files:
        image = nib.load(str(path))
        assert image.shape == (16, 16, 16)
        np.testing.assert_allclose(image.affine, expected, atol=1e-5)
        assert int(image.header["qform_code"]) > 0
        assert int(image.header["sform_code"]) > 0
        assert np.isfinite(np.asarray(image.dataobj)).all()


def test_export_staging_excludes_flagged(tiny_run):
    out, report, _ = tiny_run
    flagged = {item["synthetic"] for item in report["memorization"]["flagged"]}
    exported = {path.name for path in (out / "export").rglob("*") if path.is_file()}
    assert (out / "export").is_dir()
    assert not any(name.startswith(tuple(flagged)) for name in exported) if flagged else True
    assert len(report["export"]["written"]) + len(report["export"]["left_out"]) == len(report["synthetic"])


def test_public_files_name_no_patient(tiny_run):
    out, _, root = tiny_run
    public = [path for path in out.rglob("*") if path.is_file() and "private" not in path.relative_to(out).parts]
    assert public
    needles = REAL_PATIENT_IDS + [str(root), "patient_"]
    for path in public:
        if path.suffix in (".gz", ".safetensors", ".sqlite", ".dcm", ".png"):
            text = path.read_bytes().decode("latin-1")
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
        for needle in needles:
            assert needle not in text, f"{needle!r} found in {path.relative_to(out)}"


def test_private_map_links_pseudonyms(tiny_run):
    out, report, root = tiny_run
    id_map = json.loads((out / "private" / "id_map.json").read_text())
    assert len(id_map) == 8
    assert all(entry["source"].startswith(str(root)) for entry in id_map.values())
    for item in report["memorization"]["flagged"]:
        assert item["nearest_train"] in id_map


def test_generator_release_has_no_discriminator(tiny_run):
    from safetensors.numpy import load_file

    out, _, _ = tiny_run
    tensors = load_file(str(out / "generator" / "generator.safetensors"))
    assert tensors
    assert not any("disc" in name.lower() for name in tensors)
    assert not list((out / "generator").glob("*.pt"))


def test_report_html_shows_privacy(tiny_run):
    out, report, _ = tiny_run
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page
    assert f"{report['privacy']['epsilon']:.4g}" in page


@pytest.mark.slow
def test_cli_quickstart_on_data_samples(tmp_path):
    """The quickstart pipeline on the real scans, shrunk to a 16^3 grid and 2 steps."""
    out = tmp_path / "quick"
    command = [
        sys.executable, "-m", "medgan", "run", str(REPO / "pipelines" / "quickstart.yaml"), "--out", str(out), "--no-progress",
        "--set", "preprocess.grid=16", "--set", "preprocess.spacing_mm=12", "--set", "train.steps=2",
        "--set", "generate.n_per_condition=1", "--set", "evaluation.n_bootstrap=10",
        "--set", f"privacy.ledger_dir={tmp_path / 'ledger'}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["n_patients"] == 8
    assert report["data"]["n_scans"] == 9
    assert len(list((out / "synthetic").glob("syn-*.nii.gz"))) == 2
    assert (out / "report.html").exists()
    assert "noise-to-signal" in result.stdout


def test_failed_run_leaves_no_folder(tmp_path):
    from medgan.errors import PrivacyError

    manifest = _write_cohort(tmp_path / "cohort")
    config = load_pipeline(_write_pipeline(tmp_path / "cohort", manifest), ["privacy.delta=0.5"])
    out = tmp_path / "failed-run"
    with pytest.raises(PrivacyError, match="delta"):
        run_pipeline(config, out, progress=False)
    assert not out.exists()


def test_export_staged_by_format(tiny_run):
    out, report, _ = tiny_run
    staged = sorted(path.name for path in (out / "export" / "nifti").glob("syn-*.nii.gz"))
    assert staged == sorted(report["export"]["written"])
