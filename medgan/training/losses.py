"""GAN losses computed per sample, without double backward (so they work with DP-SGD)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medgan.errors import ConfigError, PrivacyError

__all__ = ["check_loss", "discriminator_loss_terms", "generator_loss"]

_LOSSES = ("hinge", "nonsaturating", "wgan-gp")


def check_loss(name: str, *, dp: bool) -> None:
    """Refuse losses that need a second backward pass under DP.

    A gradient penalty differentiates the discriminator's input gradient, which Opacus'
    per-sample hooks cannot do; silently dropping the penalty would train a different
    model than configured.
    """
    if name not in _LOSSES:
        raise ConfigError(f"train.loss={name!r} is unknown; use 'hinge' or 'nonsaturating'")
    if name == "wgan-gp":
        if dp:
            raise PrivacyError(
                "train.loss='wgan-gp' needs a gradient penalty (double backward), which has no per-patient "
                "gradient under DP-SGD; use train.loss='hinge' or 'nonsaturating'"
            )
        raise ConfigError("train.loss='wgan-gp' is not implemented; use 'hinge' or 'nonsaturating'")


def discriminator_loss_terms(name: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Return the per-pair discriminator loss (B,) for real and fake scores (B,) each."""
    if name == "hinge":
        return F.relu(1.0 - real_scores) + F.relu(1.0 + fake_scores)
    return F.softplus(-real_scores) + F.softplus(fake_scores)


def generator_loss(name: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """Return the mean generator loss over fake scores (B,)."""
    if name == "hinge":
        return -fake_scores.mean()
    return F.softplus(-fake_scores).mean()
