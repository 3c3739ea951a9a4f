"""Conditional 3D GAN models: a generator and a DP-compatible projection discriminator.

Names load lazily so that reading a pipeline configuration does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from medgan.models.config import ModelConfig

__all__ = ["ModelConfig", "Generator", "Discriminator", "build_generator", "build_discriminator"]

_LAZY = {
    "Generator": "medgan.models.generator",
    "build_generator": "medgan.models.generator",
    "Discriminator": "medgan.models.discriminator",
    "build_discriminator": "medgan.models.discriminator",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medgan.models' has no attribute {name!r}")
