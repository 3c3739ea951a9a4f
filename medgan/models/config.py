"""Configuration of the conditional 3D GAN architecture."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from medgan.configbase import Section

__all__ = ["ModelConfig"]


class ModelConfig(Section):
    """Generator and discriminator sizes; the grid comes from the preprocessing profile."""

    latent_dim: int = Field(64, ge=4, description="Length of the generator's noise vector.")
    base_channels: int = Field(16, ge=4, description="Channels of the widest generator layer divided by 8.")
    disc_channels: int = Field(16, ge=4, description="Channels of the discriminator's first layer.")
    norm: Literal["group", "instance", "none"] = Field("group", description="Discriminator normalisation (DP-compatible only).")
    groups: int = Field(4, ge=1, description="Groups of each GroupNorm layer.")
