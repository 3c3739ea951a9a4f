"""Configuration of the conditional 3D GAN architecture."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from medgan.configbase import Section

__all__ = ["ModelConfig"]


class ModelConfig(Section):
    """Generator and discriminator sizes; the grid comes from the preprocessing profile.

    ``norm="batch"``, ``spectral_norm`` and ``inplace_activations`` exist so that a
    DCGAN-style configuration can be written down and rejected with a reason: none of
    them has per-sample gradients in Opacus, so the DP discriminator rejects them when
    it is built.
    """

    latent_dim: int = Field(64, ge=4, description="Length of the generator's noise vector.")
    base_channels: int = Field(16, ge=4, description="Channels of the widest generator layer divided by 8.")
    disc_channels: int = Field(16, ge=4, description="Channels of the discriminator's first layer.")
    norm: Literal["group", "instance", "batch", "none"] = Field(
        "group", description="Discriminator normalisation; 'batch' is rejected under DP because it has no per-sample gradients."
    )
    groups: int = Field(4, ge=1, description="Groups of each GroupNorm layer.")
    label_embedding_dim: int = Field(8, ge=1, description="Generator: length of each label column's embedding.")
    disc_min_size: int = Field(
        4, ge=1, description="Discriminator: downsample by 2 until the feature maps are this many voxels wide."
    )
    spectral_norm: bool = Field(False, description="Spectral normalisation in the discriminator, rejected under DP.")
    inplace_activations: bool = Field(False, description="In-place LeakyReLU, rejected under DP because it breaks Opacus' hooks.")
