"""Training of the conditional 3D GAN (DP or not) and sampling from the trained generator.

Names load lazily: ``medgan.config`` imports this package's ``config`` module, and the
command line must not pay for importing torch just to parse a pipeline file.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TrainResult", "train_gan", "NOT_PRIVATE", "generate_volumes"]

_LAZY = {
    "TrainResult": "medgan.training.train",
    "train_gan": "medgan.training.train",
    "NOT_PRIVATE": "medgan.training.train",
    "generate_volumes": "medgan.training.generate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medgan.training' has no attribute {name!r}")
