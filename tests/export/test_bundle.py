"""Release bundle: allow-listed files only, safetensors only, loadable layout."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from medgan.errors import InputError, PrivacyError
from medgan.export.bundle import BUNDLE_FILES, write_bundle
from medgan.fileio import sha256_file


def test_bundle_files_allow_listed(ct_run: Path, tmp_path: Path) -> None:
    (ct_run / "private" / "checkpoints").mkdir(parents=True)
    (ct_run / "private" / "checkpoints" / "discriminator.safetensors").write_bytes(b"x")
    (ct_run / "generator" / "optimizer.pt").write_bytes(b"x")
    out = write_bundle(ct_run, tmp_path / "bundle")
    assert sorted(path.name for path in out.iterdir()) == sorted(BUNDLE_FILES)


def test_bundle_manifest_hashes(ct_run: Path, tmp_path: Path) -> None:
    out = write_bundle(ct_run, tmp_path / "bundle")
    manifest = json.loads((out / "MANIFEST.json").read_text())["sha256"]
    assert manifest["generator.safetensors"] == sha256_file(ct_run / "generator" / "generator.safetensors")
    assert all(manifest[name] == sha256_file(out / name) for name in manifest)


def test_bundle_config_versioned(ct_run: Path, tmp_path: Path) -> None:
    import yaml

    config = yaml.safe_load((write_bundle(ct_run, tmp_path / "bundle") / "config.yaml").read_text())
    assert config["bundle_format"] == 1
    assert config["data"]["manifest"] == "<site path>"


def test_bundle_rejects_pickle(ct_run: Path, tmp_path: Path) -> None:
    (ct_run / "generator" / "generator.safetensors").write_bytes(pickle.dumps({"weight": [1.0]}))
    with pytest.raises(InputError, match="not a safetensors file"):
        write_bundle(ct_run, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_bundle_non_private_rejected(ct_run: Path, tmp_path: Path) -> None:
    report = json.loads((ct_run / "report.json").read_text())
    report["privacy"]["private"] = False
    (ct_run / "report.json").write_text(json.dumps(report))
    with pytest.raises(PrivacyError, match="without differential privacy"):
        write_bundle(ct_run, tmp_path / "bundle")


def test_bundle_card_covers_weights(ct_run: Path, tmp_path: Path) -> None:
    card = json.loads((write_bundle(ct_run, tmp_path / "bundle") / "dataset_card.json").read_text())
    assert "the released generator weights" in card["privacy"]["epsilon_covers"]
    assert card["dataset"]["kind"] == "generator bundle"


@pytest.mark.slow
def test_bundle_generates_with_documented_loader(run_factory, tmp_path: Path) -> None:
    # A real (untrained) generator saved by the training code, bundled, then sampled
    # through the command the bundle's README documents.
    from click.testing import CliRunner

    from medgan.cli.main import cli
    from medgan.data.config import PreprocessConfig
    from medgan.models import ModelConfig, build_generator
    from medgan.training.bundle import save_generator

    run = run_factory(n_scans=1)
    model = ModelConfig(latent_dim=8, base_channels=4, disc_channels=4, groups=2)
    generator = build_generator(model, 16, [2])
    save_generator(
        generator,
        run / "generator",
        model=model,
        label_names=["scan_type"],
        label_values={"scan_type": ["chest_ct", "lung_ct"]},
        preprocess=PreprocessConfig(grid=16, spacing_mm=4.0),
        modality="CT",
        privacy={"private": True, "epsilon": 7.9, "delta": 1e-5},
    )
    bundle = write_bundle(run, tmp_path / "bundle")
    result = CliRunner().invoke(cli, ["generate", "--bundle", str(bundle), "--n", "1", "--out", str(tmp_path / "samples")])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "samples").glob("*.nii.gz")) == ["syn-0000.nii.gz", "syn-0001.nii.gz"]
