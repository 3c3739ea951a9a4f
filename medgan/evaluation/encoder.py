"""The shipped 3D feature encoder and loading of user-supplied encoder weights.

Fidelity metrics (FID, KID, MMD) compare sets in a feature space, and the ruler must be
the same in every run and must not encode the site's patients. So medgan ships a small
3D convolutional encoder trained here on public anatomy only (MNI152 templates and
public MR/CT samples under random smooth deformations, intensity changes and noise, see
``medgan/evaluation/train_encoder.py``). Its weights are a safetensors file whose
SHA-256 is recorded in every evaluation, as is the hash of any weights a user supplies.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medgan.errors import ConfigError, InputError
from medgan.fileio import sha256_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ENCODER_NAME",
    "ENCODER_VERSION",
    "SHIPPED_WEIGHTS",
    "ExtractorInfo",
    "FeatureExtractor",
    "build_encoder",
    "load_extractor",
]

logger = logging.getLogger(__name__)

ENCODER_NAME = "medgan-encoder3d"
ENCODER_VERSION = "2"
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "encoder3d-v2.safetensors"
CHANNELS = (16, 32, 64, 128)
FEATURE_DIM = CHANNELS[-1]


@dataclass(frozen=True)
class ExtractorInfo:
    """Identity of the feature extractor recorded in every evaluation."""

    name: str
    version: str
    sha256: str
    feature_dim: int
    architecture: str = ENCODER_NAME

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "feature_dim": self.feature_dim,
            "architecture": self.architecture,
        }


def build_encoder() -> "torch.nn.Module":
    """Return the untrained encoder network.

    Three stride-2 convolutions and one stride-1 convolution, GroupNorm (no batch
    statistics, so a feature does not depend on which other scans share the batch),
    and global average pooling, so any cubic grid from 16 voxels up maps to
    ``FEATURE_DIM`` features.
    """
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    in_channels = 1
    for index, out_channels in enumerate(CHANNELS):
        stride = 1 if index == len(CHANNELS) - 1 else 2
        layers += [
            nn.Conv3d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1),
            nn.GroupNorm(num_groups=min(8, out_channels // 2), num_channels=out_channels),
            nn.GELU(),
        ]
        in_channels = out_channels
    layers += [nn.AdaptiveAvgPool3d(1), nn.Flatten()]
    torch.manual_seed(0)
    return nn.Sequential(*layers)


class FeatureExtractor:
    """Map ``(N, 1, G, G, G)`` volumes to ``(N, D)`` float64 features with a frozen encoder."""

    def __init__(self, module: "torch.nn.Module", info: ExtractorInfo, batch_size: int = 16) -> None:
        self.module = module.eval()
        self.info = info
        self.batch_size = batch_size

    def __call__(self, volumes: np.ndarray) -> np.ndarray:
        """Return features of ``volumes``; an empty input gives a ``(0, D)`` array."""
        import torch

        if volumes.ndim != 5 or volumes.shape[1] != 1:
            raise InputError(f"feature extraction needs volumes shaped (N, 1, G, G, G), got {volumes.shape}")
        if volumes.shape[0] == 0:
            return np.zeros((0, self.info.feature_dim))
        outputs = []
        with torch.inference_mode():
            for start in range(0, volumes.shape[0], self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(volumes[start : start + self.batch_size], dtype=np.float32))
                outputs.append(self.module(batch).double().numpy())
        features = np.concatenate(outputs, axis=0)  # (N, D)
        if not np.all(np.isfinite(features)):
            raise InputError("the feature extractor returned non-finite features; check the extractor weights")
        return features


_RESNET_DEPTHS = (10, 18, 34, 50)


def _module_for_state(state: dict, path: Path) -> tuple["torch.nn.Module", str, int]:
    """Return the module whose parameters ``state`` fits, its architecture name and feature size.

    medgan's encoder is tried first. A state dict with ``conv1``/``layer1`` keys (an
    optional ``module.`` prefix removed, as MedicalNet checkpoints have) is loaded into
    MONAI's 3D ResNet of the first depth that fits, without its classification head,
    whose 512 or 2048 pooled features are then used.

    Raises:
        ConfigError: no supported architecture fits the weights.
    """
    from monai.networks.nets import resnet

    module = build_encoder()
    try:
        module.load_state_dict(state, strict=True)
        return module, ENCODER_NAME, FEATURE_DIM
    except RuntimeError as error:
        own_error = str(error).splitlines()[0]
    stripped = {key.removeprefix("module."): value for key, value in state.items()}
    stripped = {key: value for key, value in stripped.items() if not key.startswith("fc.")}
    if "conv1.weight" in stripped and stripped["conv1.weight"].shape[1] == 1:
        for depth in _RESNET_DEPTHS:
            network = getattr(resnet, f"resnet{depth}")(
                spatial_dims=3, n_input_channels=1, feed_forward=False, shortcut_type="B", bias_downsample=False
            )
            try:
                network.load_state_dict(stripped, strict=True)
            except RuntimeError:
                continue
            return network, f"monai-resnet{depth}", int(network.in_planes)
    raise ConfigError(
        f"feature extractor weights {path} fit neither medgan's 3D encoder ({own_error}) nor a one-channel "
        "3D ResNet (MedicalNet layout); pass a safetensors state dict of one of them"
    )


def load_extractor(weights: Path | None = None) -> FeatureExtractor:
    """Load the shipped encoder, or the encoder architecture with user-supplied weights.

    Args:
        weights: a safetensors file with the state dict of :func:`build_encoder` or of
            a one-channel 3D ResNet in MedicalNet's layout; a JSON file of the same name
            with ``name`` and ``version`` may sit beside it. None loads the shipped
            weights.

    Raises:
        ConfigError: the weights file is missing or does not fit the encoder.
    """
    from safetensors.torch import load_file

    path = Path(weights) if weights is not None else SHIPPED_WEIGHTS
    if not path.is_file():
        hint = "reinstall medgan" if weights is None else "check evaluation.extractor_weights"
        raise ConfigError(f"feature extractor weights {path} not found; {hint}")
    try:
        state = {key: value.float() for key, value in load_file(str(path)).items()}
    except Exception as error:  # safetensors raises several unrelated types for a bad file
        raise ConfigError(f"feature extractor weights {path} are not a readable safetensors file ({error})") from None
    module, architecture, feature_dim = _module_for_state(state, path)
    name, version = ENCODER_NAME, ENCODER_VERSION
    sidecar = path.with_suffix(".json")
    if weights is not None:
        name, version = f"user:{path.stem}", "unknown"
        if sidecar.is_file():
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            name, version = str(meta.get("name", name)), str(meta.get("version", version))
    info = ExtractorInfo(name=name, version=version, sha256=sha256_file(path), feature_dim=feature_dim, architecture=architecture)
    logger.info("feature extractor %s version %s sha256 %s", info.name, info.version, info.sha256[:12])
    return FeatureExtractor(module, info)
