"""Conditional 3D generator: latent vector and labels to a (1, G, G, G) volume in [-1, 1]."""

from __future__ import annotations

import math

import torch
from torch import nn

from medgan.models.config import ModelConfig
from medgan.models.validation import check_grid

__all__ = ["Generator", "build_generator"]

_START_SIZE = 4


class Generator(nn.Module):
    """Upsampling convolutional generator conditioned by label embeddings.

    The latent vector is concatenated with one learned embedding per label column, mapped
    to a 4^3 feature volume, then doubled in size by nearest upsampling and a 3x3x3
    convolution until it reaches the grid.  Nearest upsampling plus convolution avoids the
    checkerboard pattern of transposed convolutions.
    """

    def __init__(self, config: ModelConfig, grid: int, n_classes: list[int]) -> None:
        super().__init__()
        check_grid(grid)
        self.latent_dim = config.latent_dim
        self.grid = grid
        self.n_classes = list(n_classes)
        self.embeddings = nn.ModuleList(nn.Embedding(count, config.label_embedding_dim) for count in self.n_classes)
        levels = int(math.log2(grid // _START_SIZE))
        channels = [max(config.base_channels, config.base_channels * 8 // (2**level)) for level in range(levels + 1)]
        self.start_channels = channels[0]
        in_features = config.latent_dim + config.label_embedding_dim * len(self.n_classes)
        self.project = nn.Linear(in_features, channels[0] * _START_SIZE**3)
        blocks: list[nn.Module] = []
        for level in range(levels):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv3d(channels[level], channels[level + 1], 3, padding=1),
                _group_norm(channels[level + 1], config.groups),
                nn.LeakyReLU(0.2),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.to_volume = nn.Conv3d(channels[-1], 1, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Map ``z`` (B, latent) and ``labels`` (B, n_label_columns) int64 to (B, 1, G, G, G)."""
        parts = [z] + [embedding(labels[:, column]) for column, embedding in enumerate(self.embeddings)]
        h = self.project(torch.cat(parts, dim=1))
        h = h.view(-1, self.start_channels, _START_SIZE, _START_SIZE, _START_SIZE)  # (B, C, 4, 4, 4)
        return torch.tanh(self.to_volume(self.blocks(h)))


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= ``groups`` that divides ``channels``."""
    count = max(g for g in range(1, groups + 1) if channels % g == 0)
    return nn.GroupNorm(count, channels)


def build_generator(config: ModelConfig, grid: int, n_classes: list[int]) -> Generator:
    """Return the conditional generator for a cubic ``grid`` and label cardinalities ``n_classes``.

    The generator's inputs are only noise and labels, never a patient's data, so it is private by
    post-processing of the DP discriminator and needs no per-sample gradients.
    """
    return Generator(config, grid, n_classes)
