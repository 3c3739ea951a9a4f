"""The shipped encoder: identity, size, user weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from medgan.errors import ConfigError, InputError
from medgan.evaluation.encoder import SHIPPED_WEIGHTS, build_encoder, load_extractor
from medgan.fileio import sha256_file


def test_shipped_weights_small():
    assert SHIPPED_WEIGHTS.stat().st_size < 1_000_000


def test_shipped_weights_hash_matches_sidecar():
    sidecar = json.loads(SHIPPED_WEIGHTS.with_suffix(".json").read_text())
    assert load_extractor().info.sha256 == sidecar["sha256"]


def test_shipped_extractor_name():
    assert load_extractor().info.name == "medgan-encoder3d"


@pytest.mark.parametrize("grid", [16, 32])
def test_extractor_feature_shape(grid):
    features = load_extractor()(np.zeros((3, 1, grid, grid, grid), dtype=np.float32))
    assert features.shape == (3, 128)


def test_extractor_batch_independent():
    extractor = load_extractor()
    volumes = np.random.default_rng(0).uniform(-1, 1, (4, 1, 16, 16, 16)).astype(np.float32)
    assert np.allclose(extractor(volumes)[:1], extractor(volumes[:1]), atol=1e-5)


def test_extractor_wrong_shape_raises():
    with pytest.raises(InputError, match=r"\(N, 1, G, G, G\)"):
        load_extractor()(np.zeros((2, 16, 16, 16), dtype=np.float32))


def test_user_weights_recorded(tmp_path):
    path = tmp_path / "site-encoder.safetensors"
    save_file({key: value.contiguous() for key, value in build_encoder().state_dict().items()}, str(path))
    info = load_extractor(path).info
    assert (info.name, info.sha256) == ("user:site-encoder", sha256_file(path))


def test_user_weights_missing_raises(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_extractor(tmp_path / "absent.safetensors")


def test_user_weights_wrong_architecture_raises(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(ConfigError, match="fit neither"):
        load_extractor(path)


def test_user_medicalnet_resnet_loaded(tmp_path):
    from monai.networks.nets import resnet10

    network = resnet10(spatial_dims=3, n_input_channels=1, feed_forward=False, shortcut_type="B", bias_downsample=False)
    path = tmp_path / "resnet_10.safetensors"
    save_file({f"module.{key}": value.contiguous() for key, value in network.state_dict().items()}, str(path))  # MedicalNet's key prefix
    extractor = load_extractor(path)
    assert (extractor.info.architecture, extractor(np.zeros((1, 1, 16, 16, 16), dtype=np.float32)).shape) == ("monai-resnet10", (1, 512))
