"""The train and generate commands: option checks and a generate round trip."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from medgan.cli.main import cli
from medgan.data.config import PreprocessConfig
from medgan.models import build_generator
from medgan.training.bundle import save_generator
from tests.training.conftest import TINY_MODEL


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
