"""Generator bundle round trip and sampling into NIfTI files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from medgan.data.config import PreprocessConfig
from medgan.data.preprocess import canonical_affine
from medgan.errors import ConfigError, InputError
from medgan.fileio import sha256_file
from medgan.models import build_generator
from medgan.training.bundle import load_generator, save_generator
from medgan.training.generate import generate_volumes
from tests.training.conftest import TINY_MODEL

PROFILE = PreprocessConfig(grid=16, spacing_mm=5.0)
VALUES = {"scan_type": ["chest_ct", "head_ct"], "sex": ["F", "M", "U"]}


def _save(tmp_path, modality="CT", by_condition=None):
    torch.manual_seed(0)
    generator = build_generator(TINY_MODEL, 16, [2, 3])
    save_generator(
        generator,
        tmp_path / "generator",
        model=TINY_MODEL,
        label_names=["scan_type", "sex"],
        label_values=VALUES,
        preprocess=PROFILE,
        modality=modality,
        privacy={"private": True, "epsilon": 3.0, "delta": 1e-5},
        modality_by_condition=by_condition,
    )
    return generator, tmp_path / "generator"


def test_bundle_round_trip_weights(tmp_path):
    generator, folder = _save(tmp_path)
    loaded = load_generator(folder).generator
    assert all(torch.equal(a, b) for a, b in zip(generator.state_dict().values(), loaded.state_dict().values()))


def test_bundle_round_trip_output(tmp_path):
    generator, folder = _save(tmp_path)
    z, labels = torch.randn(2, TINY_MODEL.latent_dim), torch.tensor([[0, 2], [1, 0]])
    generator.eval()
    assert torch.equal(generator(z, labels), load_generator(folder).generator(z, labels))


def test_bundle_json_records_weights_hash(tmp_path):
    _, folder = _save(tmp_path)
    meta = json.loads((folder / "generator.json").read_text())
    assert meta["weights_sha256"] == sha256_file(folder / "generator.safetensors")


def test_bundle_json_records_vocabulary(tmp_path):
    _, folder = _save(tmp_path)
    assert json.loads((folder / "generator.json").read_text())["label_values"] == VALUES


def test_bundle_tampered_weights_rejected(tmp_path):
    _, folder = _save(tmp_path)
    weights = folder / "generator.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="SHA-256"):
        load_generator(folder)


def test_bundle_missing_rejected(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_generator(tmp_path)


def test_generate_covers_every_condition(tmp_path):
    _, folder = _save(tmp_path)
    index = generate_volumes(folder, tmp_path / "syn", n_per_condition=2, seed=1)
    combos = sorted((row["labels"]["scan_type"], row["labels"]["sex"]) for row in index)
    assert combos == sorted([(a, b) for a in VALUES["scan_type"] for b in VALUES["sex"]] * 2)


def test_generate_index_file_matches_return(tmp_path):
    _, folder = _save(tmp_path)
    index = generate_volumes(folder, tmp_path / "syn", n_per_condition=1, seed=1)
    assert json.loads((tmp_path / "syn" / "index.json").read_text()) == index


def test_generate_hashes_match_files(tmp_path):
    _, folder = _save(tmp_path)
    index = generate_volumes(folder, tmp_path / "syn", n_per_condition=1, seed=1)
    assert all(sha256_file(tmp_path / "syn" / row["file"]) == row["sha256"] for row in index)


def test_generate_names_sequential(tmp_path):
    _, folder = _save(tmp_path)
    index = generate_volumes(folder, tmp_path / "syn", n_per_condition=1, seed=1)
    assert [row["file"] for row in index] == [f"syn-{i:04d}.nii.gz" for i in range(6)]


def test_generate_ct_in_hounsfield_window(tmp_path):
    _, folder = _save(tmp_path)
    generate_volumes(folder, tmp_path / "syn", n_per_condition=1, seed=1)
    data = nib.load(tmp_path / "syn" / "syn-0000.nii.gz").get_fdata()
    assert data.min() >= PROFILE.ct_window[0]
    assert data.max() <= PROFILE.ct_window[1]
    assert data.std() > 0


def test_generate_canonical_affine(tmp_path):
    _, folder = _save(tmp_path)
    generate_volumes(folder, tmp_path / "syn", n_per_condition=1, seed=1)
    assert np.allclose(nib.load(tmp_path / "syn" / "syn-0000.nii.gz").affine, canonical_affine(PROFILE))


def test_generate_same_seed_same_files(tmp_path):
    _, folder = _save(tmp_path)
    first = generate_volumes(folder, tmp_path / "a", n_per_condition=1, seed=5)
    second = generate_volumes(folder, tmp_path / "b", n_per_condition=1, seed=5)
    assert [r["sha256"] for r in first] == [r["sha256"] for r in second]


def test_generate_mixed_modality_unknown_condition_rejected(tmp_path):
    by_condition = [{"labels": {"scan_type": "chest_ct", "sex": "F"}, "modality": "CT"}]
    _, folder = _save(tmp_path, modality="mixed", by_condition=by_condition)
    with pytest.raises(ConfigError, match="intensity unit"):
        generate_volumes(folder, tmp_path / "syn", n_per_condition=1, seed=1)


def test_generate_mixed_modality_writes_nothing_on_error(tmp_path):
    _, folder = _save(tmp_path, modality="mixed", by_condition=[])
    with pytest.raises(ConfigError):
        generate_volumes(folder, tmp_path / "syn", n_per_condition=1, seed=1)
    assert not (tmp_path / "syn").exists()
