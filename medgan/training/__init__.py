"""Training of the conditional 3D GAN (DP or not) and sampling from the trained generator.

Names load lazily: ``medgan.config`` imports this package's ``config`` module, and the
command line must not pay for importing torch just to parse a pipeline file.
"""

from __future__ import annotations

from medgan._lazy import lazy_getattr

__all__ = ["TrainResult", "train_gan", "NOT_PRIVATE", "generate_volumes"]

_LAZY = {
    "TrainResult": "medgan.training.train",
    "train_gan": "medgan.training.train",
    "NOT_PRIVATE": "medgan.training.train",
    "generate_volumes": "medgan.training.generate",
}

__getattr__ = lazy_getattr("medgan.training", _LAZY)
