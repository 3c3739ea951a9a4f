"""Build-time checks that a discriminator can be trained with per-sample gradients.

Opacus computes one gradient per patient by hooking each layer.  Layers that mix the
samples of a batch (BatchNorm), reparametrise their weights (spectral norm) or overwrite
the tensors the hooks keep (in-place activations) either have no per-sample gradient or
fail halfway through a backward pass.  A normaliser over a single element outputs a
constant and erases the signal without any error.  All of these are rejected here, before
training starts, with the reason and the fix.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from medgan.errors import ConfigError, PrivacyError

__all__ = ["SUPPORTED_GRIDS", "check_grid", "check_normaliser_extent", "check_dp_compatible"]

logger = logging.getLogger(__name__)

SUPPORTED_GRIDS = (16, 32, 64, 128)


def check_grid(grid: int) -> None:
    """Raise ConfigError unless ``grid`` is one of the supported cube edges."""
    if grid not in SUPPORTED_GRIDS:
        raise ConfigError(f"preprocess.grid={grid} is not supported by the GAN; use one of {', '.join(map(str, SUPPORTED_GRIDS))}")


def check_normaliser_extent(name: str, channels: int, groups: int, spatial: int) -> None:
    """Raise ConfigError when a normaliser would average over a single element.

    Args:
        name: layer name for the message.
        channels: channels entering the normaliser.
        groups: channel groups it normalises separately (``channels`` for InstanceNorm).
        spatial: voxels per channel at that layer (edge ** 3).
    """
    if channels % groups:
        raise ConfigError(
            f"{name}: {channels} channels cannot be split into {groups} groups; "
            f"set model.groups to a divisor of {channels}"
        )
    elements = (channels // groups) * spatial
    if elements < 2:
        raise ConfigError(
            f"{name}: the normaliser would run over {elements} element per group "
            f"({channels} channels / {groups} groups x {spatial} voxels), which outputs a constant "
            "and erases the signal; raise model.disc_min_size, lower model.groups or use model.norm='none'"
        )


def check_dp_compatible(module: nn.Module) -> None:
    """Raise PrivacyError if ``module`` contains a layer without per-sample gradients.

    Every problem is listed in one message.  Opacus' own validator runs as well, so a
    layer type it does not support is caught even if this list misses it.
    """
    from opacus.validators import ModuleValidator

    problems: list[str] = []
    for name, layer in module.named_modules():
        label = name or type(layer).__name__
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            problems.append(
                f"{label} is BatchNorm, which mixes the patients of a batch so no per-patient gradient exists; "
                "use model.norm='group' (GroupNorm) or 'instance'"
            )
        if isinstance(layer, nn.modules.instancenorm._InstanceNorm) and layer.track_running_stats:
            problems.append(f"{label} is InstanceNorm with running statistics; use track_running_stats=False")
        if getattr(layer, "inplace", False):
            problems.append(
                f"{label} is an in-place activation, which overwrites the tensor Opacus' backward hook reads; "
                "set model.inplace_activations=false"
            )
        if any("spectral_norm" in str(type(hook)) or "SpectralNorm" in type(hook).__name__ for hook in layer._forward_pre_hooks.values()):
            problems.append(f"{label} has spectral normalisation, which Opacus cannot differentiate per sample; set model.spectral_norm=false")
        if torch.nn.utils.parametrize.is_parametrized(layer):
            problems.append(f"{label} has a weight parametrisation (spectral norm?), which Opacus does not support; remove it")
    if not problems:
        for error in ModuleValidator.validate(module, strict=False):
            problems.append(str(error))
    if problems:
        raise PrivacyError("the discriminator cannot be trained with DP-SGD: " + "; ".join(problems))
