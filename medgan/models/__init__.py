"""Conditional 3D GAN models: a generator and a DP-compatible projection discriminator.

Names load lazily so that reading a pipeline configuration does not import torch.
"""

from __future__ import annotations

from medgan._lazy import lazy_getattr

from medgan.models.config import ModelConfig

__all__ = ["ModelConfig", "Generator", "Discriminator", "build_generator", "build_discriminator"]

_LAZY = {
    "Generator": "medgan.models.generator",
    "build_generator": "medgan.models.generator",
    "Discriminator": "medgan.models.discriminator",
    "build_discriminator": "medgan.models.discriminator",
}

__getattr__ = lazy_getattr("medgan.models", _LAZY)
