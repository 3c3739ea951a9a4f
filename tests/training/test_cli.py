"""The train and generate commands: option checks and a generate round trip."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from medgan.cli.main import cli
from medgan.data.config import PreprocessConfig
from medgan.models import build_generator
from medgan.runs import RunLayout
from medgan.training.bundle import save_generator
from .conftest import TINY_MODEL


def _bundle(tmp_path, private=True):
    torch.manual_seed(0)
    save_generator(
        build_generator(TINY_MODEL, 16, [2]),
        tmp_path / "bundle",
        model=TINY_MODEL,
        label_names=["scan_type"],
        label_values={"scan_type": ["a", "b"]},
        preprocess=PreprocessConfig(grid=16),
        modality="CT",
        privacy={"private": private, "epsilon": 2.5 if private else None, "delta": 1e-5 if private else None},
    )
    return tmp_path / "bundle"


def test_generate_bundle_writes_index(tmp_path):
    result = CliRunner().invoke(cli, ["generate", "--bundle", str(_bundle(tmp_path)), "--n", "2", "--out", str(tmp_path / "syn")])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "syn" / "index.json").read_text())) == 4


def test_generate_non_private_labelled(tmp_path):
    bundle = _bundle(tmp_path, private=False)
    result = CliRunner().invoke(cli, ["generate", "--bundle", str(bundle), "--n", "1", "--out", str(tmp_path / "syn")])
    assert "NOT PRIVATE" in result.output


def test_generate_run_and_bundle_rejected(tmp_path):
    bundle = str(_bundle(tmp_path))
    result = CliRunner().invoke(cli, ["generate", "--bundle", bundle, "--run", bundle, "--out", str(tmp_path / "syn")])
    assert result.exit_code == 2
    assert "not both" in result.output


def test_generate_nonempty_out_rejected(tmp_path):
    bundle = str(_bundle(tmp_path))
    (tmp_path / "syn").mkdir()
    (tmp_path / "syn" / "keep.txt").write_text("x")
    result = CliRunner().invoke(cli, ["generate", "--bundle", bundle, "--out", str(tmp_path / "syn")])
    assert result.exit_code == 2
    assert "not empty" in result.output


def test_train_without_pipeline_rejected(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "PIPELINE" in result.output


def test_train_resume_unstarted_rejected(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "run"), "--resume"])
    assert result.exit_code == 2
    assert "not a started run folder" in result.output


def test_train_existing_checkpoint_rejected(tmp_path):
    checkpoints = tmp_path / "run" / "private" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.pt").write_bytes(b"x")
    (tmp_path / "p.yaml").write_text("data:\n  manifest: m.csv\n")
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "--resume" in result.output



@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A run folder that ``medgan train`` finished, with an evaluation section added to its report."""
    root = tmp_path_factory.mktemp("finished")
    rng = np.random.default_rng(0)
    lines = ["path,patient_id,modality,split,scan_type"]
    for index in range(3):
        volume = rng.uniform(0, 100, size=(16, 16, 16)).astype(np.float32)
        nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 2.0, 1.0])), str(root / f"scan{index}.nii.gz"))
        lines.append(f"scan{index}.nii.gz,p{index},MR,train,{'ab'[index % 2]}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    raw = {
        "data": {"manifest": str(root / "manifest.csv")},
        "preprocess": {"grid": 16},
        "model": TINY_MODEL.model_dump(),
        "privacy": {"enabled": False, "ledger_dir": str(root / "ledger")},
        "train": {"steps": 2, "batch_size": 1, "generator_batch_size": 2, "seed": 0, "checkpoint_every": 1, "sample_every": 2},
    }
    (root / "pipeline.yaml").write_text(yaml.safe_dump(raw))
    run = root / "run"
    result = CliRunner().invoke(cli, ["train", str(root / "pipeline.yaml"), "--out", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    layout = RunLayout(run)
    report = json.loads(layout.report_json.read_text())
    layout.report_json.write_text(json.dumps({**report, "fidelity": {"fid": 1.0}}))
    return layout


def _resume(layout):
    return CliRunner().invoke(cli, ["train", "--out", str(layout.root), "--resume", "--no-progress"])


def test_train_resume_finished_run_rejected(finished_run):
    assert _resume(finished_run).exit_code == 2


def test_train_resume_finished_run_message(finished_run):
    expected = f"run {finished_run.root} already finished training at step 2; nothing to resume"
    assert expected in _resume(finished_run).output


def test_train_resume_finished_run_report_kept(finished_run):
    before = finished_run.report_json.read_bytes()
    _resume(finished_run)
    assert finished_run.report_json.read_bytes() == before


def test_train_resume_finished_run_generator_kept(finished_run):
    before = (finished_run.generator / "generator.safetensors").stat().st_mtime_ns
    _resume(finished_run)
    assert (finished_run.generator / "generator.safetensors").stat().st_mtime_ns == before


def test_train_resume_finished_run_config_kept(finished_run):
    before = finished_run.config.stat().st_mtime_ns
    _resume(finished_run)
    assert finished_run.config.stat().st_mtime_ns == before
