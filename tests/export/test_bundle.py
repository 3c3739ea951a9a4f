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
