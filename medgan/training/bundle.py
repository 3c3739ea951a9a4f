"""The released generator: ``generator.safetensors`` plus ``generator.json``.

The JSON file contains everything needed to rebuild and use the weights (architecture,
grid, label vocabulary, preprocessing profile, modality, the privacy statement) and the
SHA-256 of the weights file, which is checked on load so a swapped or truncated file is
rejected rather than sampled from.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from medgan.data.config import PreprocessConfig
from medgan.errors import ConfigError, InputError
from medgan.fileio import atomic_path, sha256_file, write_json_atomic
from medgan.models import Generator, ModelConfig, build_generator

__all__ = ["WEIGHTS_NAME", "CONFIG_NAME", "GeneratorBundle", "save_generator", "load_generator"]

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "generator.safetensors"
CONFIG_NAME = "generator.json"
FORMAT_VERSION = 1


@dataclass
class GeneratorBundle:
    """A loaded generator and the metadata it was saved with."""

    generator: Generator
    model: ModelConfig
    grid: int
    label_names: list[str]
    label_values: dict[str, list[str]]
    preprocess: PreprocessConfig
    modality: str
    metadata: dict[str, Any]

    def modality_of(self, labels: dict[str, str]) -> str:
        """Modality of synthetic volumes with ``labels``: the cohort's, or that condition's.

        Raises:
            ConfigError: the cohort mixes modalities and no training scan had these labels.
        """
        if self.modality in ("CT", "MR"):
            return self.modality
        for entry in self.metadata.get("modality_by_condition", []):
            if entry.get("labels") == labels:
                return str(entry["modality"])
        raise ConfigError(
            f"the generator was trained on CT and MR scans and none had labels {labels}, so the intensity unit of "
            "that condition is unknown; generate only conditions present in training"
        )


def save_generator(
    generator: Generator,
    directory: Path,
    *,
    model: ModelConfig,
    label_names: list[str],
    label_values: dict[str, list[str]],
    preprocess: PreprocessConfig,
    modality: str,
    privacy: dict[str, Any],
    modality_by_condition: list[dict[str, Any]] | None = None,
) -> Path:
    """Write the generator's weights and config into ``directory``; return the JSON path.

    The weights are written first and the JSON (with their hash) last, so a folder with
    a JSON file always has the weights it describes.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_NAME
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in generator.state_dict().items()}
    with atomic_path(weights) as temporary:
        save_file(tensors, str(temporary), metadata={"format": "medgan-generator", "version": str(FORMAT_VERSION)})
    payload = {
        "format_version": FORMAT_VERSION,
        "architecture": model.model_dump(mode="json"),
        "grid": generator.grid,
        "label_names": list(label_names),
        "label_values": {name: list(label_values[name]) for name in label_names},
        "preprocess": preprocess.model_dump(mode="json"),
        "modality": modality,
        "modality_by_condition": list(modality_by_condition or []),
        "privacy": privacy,
        "weights": WEIGHTS_NAME,
        "weights_sha256": sha256_file(weights),
    }
    write_json_atomic(directory / CONFIG_NAME, payload)
    return directory / CONFIG_NAME


def load_generator(directory: Path, device: str | torch.device = "cpu") -> GeneratorBundle:
    """Rebuild the generator saved in ``directory`` and check its weights' hash.

    Raises:
        InputError: a file is missing, the JSON is invalid, or the weights do not match
            the recorded SHA-256.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{config_path} not found; point at a run's generator/ folder or a release bundle") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{config_path} is not valid JSON ({error}); the bundle is damaged") from None
    weights = directory / str(meta.get("weights", WEIGHTS_NAME))
    if not weights.is_file():
        raise InputError(f"{weights} not found; the generator bundle is incomplete")
    digest = sha256_file(weights)
    if digest != meta.get("weights_sha256"):
        raise InputError(
            f"{weights} has SHA-256 {digest[:12]}..., but {config_path.name} records "
            f"{str(meta.get('weights_sha256'))[:12]}...; the weights were changed or damaged, do not use them"
        )
    try:
        model = ModelConfig.model_validate(meta["architecture"])
        preprocess = PreprocessConfig.model_validate(meta["preprocess"])
        label_names = list(meta["label_names"])
        label_values = {name: list(meta["label_values"][name]) for name in label_names}
        grid = int(meta["grid"])
    except (KeyError, ValueError, TypeError) as error:
        raise InputError(f"{config_path} lacks or has an invalid field ({error}); the bundle is damaged") from None
    generator = build_generator(model, grid, [len(label_values[name]) for name in label_names])
    generator.load_state_dict(load_file(str(weights), device="cpu"))
    generator.to(device).eval()
    return GeneratorBundle(generator, model, grid, label_names, label_values, preprocess, str(meta.get("modality", "")), meta)
