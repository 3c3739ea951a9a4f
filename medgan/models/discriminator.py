"""Conditional 3D projection discriminator built from layers Opacus can differentiate per sample."""

from __future__ import annotations

import math

import torch
from torch import nn

from medgan.errors import ConfigError
from medgan.models.config import ModelConfig
from medgan.models.validation import check_dp_compatible, check_grid, check_normaliser_extent

__all__ = ["Discriminator", "build_discriminator"]


class Discriminator(nn.Module):
    """Strided Conv3d stack, spatial mean, a linear score and one projection term per label.

    Conditioning by projection (the inner product of a label embedding with the pooled
    features) adds ``n_classes * features`` parameters instead of a label map as large as
    the volume.
    Under DP every parameter receives noise, so fewer parameters are better.
    """

    def __init__(self, config: ModelConfig, grid: int, n_classes: list[int]) -> None:
        super().__init__()
        check_grid(grid)
        if config.disc_min_size >= grid:
            raise ConfigError(f"model.disc_min_size={config.disc_min_size} must be smaller than the grid {grid}")
        levels = max(1, int(math.log2(grid // max(1, config.disc_min_size))))
        layers: list[nn.Module] = []
        channels_in, size = 1, grid
        for level in range(levels):
            channels_out = config.disc_channels * min(2**level, 8)
            conv = nn.Conv3d(channels_in, channels_out, 4, stride=2, padding=1)
            if config.spectral_norm:
                conv = nn.utils.parametrizations.spectral_norm(conv)
            layers.append(conv)
            size //= 2
            if level > 0:
                layers.append(_normaliser(config, channels_out, size, f"discriminator layer {level}"))
            layers.append(nn.LeakyReLU(0.2, inplace=config.inplace_activations))
            channels_in = channels_out
        self.features = nn.Sequential(*layers)
        self.n_features = channels_in
        self.score = nn.Linear(channels_in, 1)
        self.projections = nn.ModuleList(nn.Embedding(count, channels_in) for count in n_classes)

    def forward(self, volumes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Score ``volumes`` (B, 1, G, G, G) under ``labels`` (B, n_label_columns); returns (B,)."""
        h = self.features(volumes).mean(dim=(2, 3, 4))  # (B, C)
        out = self.score(h).squeeze(1)  # (B,)
        for column, projection in enumerate(self.projections):
            out = out + (projection(labels[:, column]) * h).sum(dim=1)
        return out


def _normaliser(config: ModelConfig, channels: int, size: int, name: str) -> nn.Module:
    spatial = size**3
    if config.norm == "group":
        check_normaliser_extent(name, channels, config.groups, spatial)
        return nn.GroupNorm(config.groups, channels)
    if config.norm == "instance":
        check_normaliser_extent(name, channels, channels, spatial)
        return nn.InstanceNorm3d(channels, affine=True, track_running_stats=False)
    if config.norm == "batch":
        # Per-channel statistics over the spatial extent (and a batch that may hold one sample).
        check_normaliser_extent(name, channels, channels, spatial)
        return nn.BatchNorm3d(channels)
    return nn.Identity()


def build_discriminator(config: ModelConfig, grid: int, n_classes: list[int], dp: bool) -> Discriminator:
    """Return the projection discriminator; with ``dp`` it is checked for per-sample gradients.

    Raises:
        ConfigError: unsupported grid, or a normaliser over a single element.
        PrivacyError: ``dp`` and a layer without per-sample gradients (BatchNorm, spectral
            norm, in-place activation).
    """
    if not n_classes or any(count < 1 for count in n_classes):
        raise ConfigError(f"the discriminator needs at least one label column with >= 1 class, got {n_classes}")
    model = Discriminator(config, grid, n_classes)
    if dp:
        check_dp_compatible(model)
    return model
