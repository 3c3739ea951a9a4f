"""Assemble the ``fidelity`` report section, overall and per condition."""

from __future__ import annotations

from typing import Any

import numpy as np

from medgan.evaluation.config import EvaluationConfig
from medgan.evaluation.fidelity import anatomy_distances, feature_metrics, histogram_distances, ms_ssim_diversity
from medgan.evaluation.stats import not_computable

__all__ = ["fidelity_section"]


def _paired(query: np.ndarray, reference: np.ndarray, holdout: np.ndarray, function) -> dict[str, Any]:
    return {"synthetic_vs_train": function(query, reference), "holdout_vs_train": function(holdout, reference)}


def fidelity_section(
    sets: dict[str, list[Any]],
    volumes: dict[str, np.ndarray],
    features: dict[str, np.ndarray],
    config: EvaluationConfig,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Return feature distances, MS-SSIM diversity, histogram and anatomy distances.

    Each distance is given for synthetic-vs-train and, as the noise floor, for
    holdout-vs-train. Per-condition entries repeat the feature distances on the scans
    that share one label value, where every set has ``min_per_condition`` of them.
    """
    section: dict[str, Any] = feature_metrics(
        features["train"],
        features["holdout"],
        features["synthetic"],
        min_samples=config.min_samples,
        n_bootstrap=config.n_bootstrap,
        confidence=config.confidence,
        rng=rng,
    )
    diversity = {
        name: ms_ssim_diversity(volumes[name], pairs=config.ms_ssim_pairs, rng=rng, n_bootstrap=config.n_bootstrap, confidence=config.confidence)
        for name in ("synthetic", "train", "holdout")
    }
    section["ms_ssim_synthetic"] = diversity["synthetic"]
    section["ms_ssim_real"] = diversity["train"]
    section["ms_ssim_holdout"] = diversity["holdout"]
    section["histogram"] = _paired(
        volumes["synthetic"], volumes["train"], volumes["holdout"], lambda a, b: histogram_distances(a, b, bins=config.histogram_bins)
    )
    section["anatomy"] = _paired(volumes["synthetic"], volumes["train"], volumes["holdout"], anatomy_distances)
    section["per_condition"] = _per_condition(sets, features, config, rng)
    return section


def _per_condition(sets, features, config: EvaluationConfig, rng: np.random.Generator) -> dict[str, Any]:
    conditions: dict[str, Any] = {}
    keys = sorted({key for scan in sets["synthetic"] for key in scan.labels})
    for key in keys:
        for value in sorted({scan.labels[key] for scan in sets["synthetic"] if key in scan.labels}):
            masks = {name: np.array([scan.labels.get(key) == value for scan in scans], dtype=bool) for name, scans in sets.items()}
            counts = {name: int(mask.sum()) for name, mask in masks.items()}
            name = f"{key}={value}"
            if min(counts.values()) < config.min_per_condition:
                conditions[name] = not_computable(f"needs at least {config.min_per_condition} scans of this condition in every set", counts)
                continue
            conditions[name] = feature_metrics(
                features["train"][masks["train"]],
                features["holdout"][masks["holdout"]],
                features["synthetic"][masks["synthetic"]],
                min_samples=config.min_per_condition,
                n_bootstrap=config.n_bootstrap,
                confidence=config.confidence,
                rng=rng,
            )
    return conditions
