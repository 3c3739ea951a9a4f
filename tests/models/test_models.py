"""Generator and discriminator: shapes, conditioning and the DP build-time checks."""

from __future__ import annotations

import pytest
import torch

from medgan.errors import ConfigError, PrivacyError
from medgan.models import ModelConfig, build_discriminator, build_generator

SMALL = ModelConfig(latent_dim=8, base_channels=4, disc_channels=4, groups=2)


def test_generator_output_shape():
    generator = build_generator(SMALL, 16, [2, 3])
    out = generator(torch.randn(3, 8), torch.tensor([[0, 0], [1, 2], [0, 1]]))
    assert out.shape == (3, 1, 16, 16, 16)


def test_generator_output_range():
    generator = build_generator(SMALL, 16, [2])
    out = generator(torch.randn(4, 8) * 50, torch.tensor([[0], [1], [0], [1]]))
    assert out.abs().max() <= 1.0


def test_generator_label_changes_output():
    torch.manual_seed(0)
    generator = build_generator(SMALL, 16, [2])
    z = torch.randn(1, 8)
    assert not torch.equal(generator(z, torch.tensor([[0]])), generator(z, torch.tensor([[1]])))


@pytest.mark.parametrize("grid", [16, 32])
def test_discriminator_output_shape(grid):
    discriminator = build_discriminator(SMALL, grid, [2], dp=True)
    assert discriminator(torch.zeros(2, 1, grid, grid, grid), torch.tensor([[0], [1]])).shape == (2,)


def test_discriminator_inputs_differ():
    torch.manual_seed(0)
    discriminator = build_discriminator(SMALL, 16, [2], dp=True)
    volumes = torch.rand(2, 1, 16, 16, 16) * 2 - 1
    scores = discriminator(volumes, torch.tensor([[0], [0]]))
    assert scores[0] != scores[1]


def test_discriminator_projection_uses_label():
    torch.manual_seed(0)
    discriminator = build_discriminator(SMALL, 16, [2], dp=True)
    volume = torch.rand(1, 1, 16, 16, 16)
    assert discriminator(volume, torch.tensor([[0]])) != discriminator(volume, torch.tensor([[1]]))


def test_discriminator_batchnorm_rejected():
    with pytest.raises(PrivacyError, match="GroupNorm"):
        build_discriminator(ModelConfig.model_validate({**SMALL.model_dump(), "norm": "batch"}), 16, [2], dp=True)


def test_discriminator_batchnorm_allowed_without_dp():
    discriminator = build_discriminator(ModelConfig.model_validate({**SMALL.model_dump(), "norm": "batch"}), 16, [2], dp=False)
    assert any(isinstance(m, torch.nn.BatchNorm3d) for m in discriminator.modules())


def test_discriminator_inplace_rejected():
    with pytest.raises(PrivacyError, match="in-place"):
        build_discriminator(ModelConfig.model_validate({**SMALL.model_dump(), "inplace_activations": True}), 16, [2], dp=True)


def test_discriminator_spectral_norm_rejected():
    with pytest.raises(PrivacyError, match="spectral"):
        build_discriminator(ModelConfig.model_validate({**SMALL.model_dump(), "spectral_norm": True}), 16, [2], dp=True)


def test_discriminator_single_element_instance_norm_rejected():
    # 16^3 halved four times is 1^3: InstanceNorm there would normalise one value per channel.
    config = ModelConfig.model_validate({**SMALL.model_dump(), "norm": "instance", "disc_min_size": 1})
    with pytest.raises(ConfigError, match="1 element"):
        build_discriminator(config, 16, [2], dp=True)


def test_discriminator_single_element_batch_norm_rejected():
    # BatchNorm after stride-2 convolutions that bring 16^3 down to 1^3 (Opacus #567's trap).
    config = ModelConfig.model_validate({**SMALL.model_dump(), "norm": "batch", "disc_min_size": 1})
    with pytest.raises(ConfigError, match="1 element"):
        build_discriminator(config, 16, [2], dp=False)


def test_discriminator_indivisible_groups_rejected():
    config = ModelConfig.model_validate({**SMALL.model_dump(), "disc_channels": 6, "groups": 5})
    with pytest.raises(ConfigError, match="divisor"):
        build_discriminator(config, 16, [2], dp=True)


def test_grid_unsupported_rejected():
    with pytest.raises(ConfigError, match="48"):
        build_generator(SMALL, 48, [2])
