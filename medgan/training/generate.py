"""Sampling synthetic volumes from a saved generator into NIfTI files and an index."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan.data.config import PreprocessConfig
from medgan.errors import ConfigError
from medgan.fileio import sha256_file, write_json_atomic

__all__ = ["generate_volumes", "label_combinations"]

logger = logging.getLogger(__name__)

_CHUNK = 8


def label_combinations(label_names: list[str], label_values: dict[str, list[str]]) -> list[dict[str, str]]:
    """Return every combination of label values, in vocabulary order (first column slowest)."""
    return [dict(zip(label_names, combo)) for combo in itertools.product(*(label_values[name] for name in label_names))]


def generate_volumes(
    generator_dir: Path,
    out_dir: Path,
    *,
    n_per_condition: int,
    seed: int,
    preprocess: PreprocessConfig | None = None,
) -> list[dict[str, Any]]:
    """Write ``n_per_condition`` volumes for every label combination and an ``index.json``.

    Volumes are mapped back to intensity units with the generator's preprocessing profile
    (or ``preprocess``, which must have the same grid) and written with the profile's
    canonical affine.  The same ``seed`` gives the same files.

    Returns:
        the index: one ``{file, labels, modality, sha256}`` per volume, also written to
        ``out_dir/index.json``.

    Raises:
        ConfigError: ``n_per_condition`` < 1 or a profile with another grid.
        InputError: the generator folder is missing or damaged.
    """
    from medgan.data.preprocess import canonical_affine, denormalize
    from medgan.export.nifti import save_nifti
    from medgan.training.bundle import load_generator

    if n_per_condition < 1:
        raise ConfigError(f"n_per_condition must be >= 1, got {n_per_condition}")
    bundle = load_generator(Path(generator_dir))
    profile = preprocess or bundle.preprocess
    if profile.grid != bundle.grid:
        raise ConfigError(f"the preprocessing profile has grid {profile.grid} but the generator makes {bundle.grid}^3 volumes")
    conditions = label_combinations(bundle.label_names, bundle.label_values)
    modalities = {tuple(c.items()): bundle.modality_of(c) for c in conditions}  # fails before any file is written
    rows = [(condition, index) for condition in conditions for index in range(n_per_condition)]
    encoded = torch.tensor(
        [[bundle.label_values[name].index(condition[name]) for name in bundle.label_names] for condition, _ in rows],
        dtype=torch.long,
    )  # (N, L)
    rng = torch.Generator().manual_seed(int(seed))
    z = torch.randn(len(rows), bundle.model.latent_dim, generator=rng)  # (N, latent)
    affine = canonical_affine(profile)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index: list[dict[str, Any]] = []
    with torch.no_grad():
        for start in range(0, len(rows), _CHUNK):
            volumes = bundle.generator(z[start : start + _CHUNK], encoded[start : start + _CHUNK])  # (b, 1, G, G, G)
            for offset, volume in enumerate(volumes):
                number = start + offset
                condition = rows[number][0]
                array = denormalize(volume[0].numpy().astype(np.float32), profile, modalities[tuple(condition.items())])  # (G, G, G)
                path = out_dir / f"syn-{number:04d}.nii.gz"
                save_nifti(array, affine, path, dtype=np.float32)
                modality = modalities[tuple(condition.items())]
                index.append({"file": path.name, "labels": dict(condition), "modality": modality, "sha256": sha256_file(path)})
    write_json_atomic(out_dir / "index.json", index)
    logger.info("wrote %d synthetic volumes (%d conditions x %d)", len(index), len(conditions), n_per_condition)
    return index
