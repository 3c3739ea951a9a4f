"""The evaluate stage: fidelity, memorization, attack and utility of one synthetic set.

:func:`evaluate_sets` is the single entry point for the pipeline and for
``medgan evaluate``. Its result contains pseudonymous scan ids only, and nearest-training
previews and distances for reviewers go to ``private_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medgan.errors import InputError
from medgan.evaluation.config import EvaluationConfig

__all__ = ["evaluate_sets", "ScanLike"]

logger = logging.getLogger(__name__)

# A holdout scan this close to a training scan is the same image, for example a duplicated
# file or one acquisition under two ids. Calibrating on it would drive the copy threshold
# to zero and hide every copy, so it is left out and listed.
DUPLICATE_DISTANCE = 1e-4


class ScanLike(Protocol):
    """The attributes of ``medgan.data.dataset.PreparedScan`` that evaluation reads."""

    scan_id: str
    labels: dict[str, str]
    array: np.ndarray


def _stack(scans: list[ScanLike], name: str) -> np.ndarray:
    """Return ``(N, 1, G, G, G)`` float32 volumes of ``scans`` after checking shape and values."""
    if not scans:
        raise InputError(f"the {name} set is empty; evaluation needs at least one {name} scan")
    shapes = {tuple(np.shape(scan.array)) for scan in scans}
    if len(shapes) != 1:
        raise InputError(f"the {name} scans have different shapes {sorted(shapes)}; preprocess every set with the same profile")
    shape = shapes.pop()
    if len(shape) != 4 or shape[0] != 1 or not (shape[1] == shape[2] == shape[3]):
        raise InputError(f"{name} scans must be shaped (1, G, G, G), got {shape}")
    volumes = np.stack([np.asarray(scan.array, dtype=np.float32) for scan in scans])  # (N, 1, G, G, G)
    bad = [scan.scan_id for scan, volume in zip(scans, volumes) if not np.all(np.isfinite(volume))]
    if bad:
        raise InputError(f"{name} scans {bad[:5]} contain NaN or Inf voxels; preprocess them with data.nonfinite set")
    return volumes


def _evaluation_id(sets: dict[str, list[ScanLike]], volumes: dict[str, np.ndarray], config: EvaluationConfig, extractor_sha: str) -> str:
    """Return a content hash of the inputs, the configuration and the extractor."""
    digest = hashlib.sha256()
    digest.update(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode())
    digest.update(extractor_sha.encode())
    for name in ("train", "holdout", "synthetic"):
        digest.update(name.encode())
        for scan, volume in zip(sets[name], volumes[name]):
            digest.update(scan.scan_id.encode())
            digest.update(json.dumps(dict(scan.labels), sort_keys=True).encode())
            digest.update(hashlib.sha256(np.ascontiguousarray(volume).tobytes()).digest())
    return digest.hexdigest()


def _split_holdout(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return index arrays of the calibration part and the attack part of the holdout set.

    The attack part gets ``floor(fraction * count)`` scans, but only when both parts
    keep at least two. Otherwise every holdout scan calibrates the copy threshold,
    which matters more, and the attack reports "not computable" with the counts.
    """
    order = np.random.default_rng(seed).permutation(count)
    attack = int(np.floor(fraction * count))
    if attack < 2 or count - attack < 2:
        attack = 0
    return np.sort(order[attack:]), np.sort(order[:attack])


def evaluate_sets(
    train: list[ScanLike],
    holdout: list[ScanLike],
    synthetic: list[ScanLike],
    config: EvaluationConfig,
    *,
    private_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a synthetic set against real training and holdout scans.

    Args:
        train: training scans of the generator (members).
        holdout: real scans the generator never saw; part calibrates the copy threshold,
            the rest are the attack's non-members.
        synthetic: the synthetic scans; ``scan_id`` is the file name, ``syn-0003.nii.gz``.
        config: evaluation settings.
        private_dir: where nearest-training distances and previews for reviewers go
            (the run's ``private/evaluation``); nothing is written when None.
        progress: show progress bars.

    Returns:
        Report sections ``evaluation``, ``fidelity``, ``memorization``, ``attack`` and
        ``utility``. Every number is finite or None with a reason.

    Raises:
        InputError: a set is empty, grids differ, or volumes hold NaN/Inf.
        ConfigError: the extractor weights are missing or do not fit.
    """
    from medgan.evaluation.attack import membership_attack
    from medgan.evaluation.encoder import load_extractor
    from medgan.evaluation.fidelity_section import fidelity_section
    from medgan.evaluation.memorization import SearchSettings, calibrate_threshold, data_copying_test, nearest_references
    from medgan.evaluation.private import write_private_evidence
    from medgan.evaluation.utility import utility_section

    sets = {"train": list(train), "holdout": list(holdout), "synthetic": list(synthetic)}
    volumes = {name: _stack(scans, name) for name, scans in sets.items()}
    grids = {name: array.shape[-1] for name, array in volumes.items()}
    if len(set(grids.values())) != 1:
        raise InputError(f"train, holdout and synthetic scans must share one grid, got {grids}; preprocess all with the same profile")
    extractor = load_extractor(config.extractor_weights)
    evaluation_id = _evaluation_id(sets, volumes, config, extractor.info.sha256)
    logger.info("evaluating %d synthetic against %d train and %d holdout scans", *(len(sets[n]) for n in ("synthetic", "train", "holdout")))

    features = {name: extractor(array) for name, array in volumes.items()}
    rng = np.random.default_rng(config.seed)
    fidelity = fidelity_section(sets, volumes, features, config, rng)

    settings = SearchSettings(
        retrieval_grid=config.retrieval_grid,
        align_grid=config.align_grid,
        candidates=config.candidates,
        max_shift_fraction=config.max_shift_fraction,
        smoothing_fraction=config.smoothing_fraction,
        chunk_size=config.chunk_size,
    )
    calibration_index, attack_index = _split_holdout(len(sets["holdout"]), config.attack_fraction, config.seed)
    to_train = nearest_references(volumes["synthetic"], volumes["train"], settings, progress=progress)
    to_holdout = nearest_references(volumes["synthetic"], volumes["holdout"], settings, progress=progress)
    holdout_to_train = nearest_references(volumes["holdout"], volumes["train"], settings, progress=progress)
    calibration_distances = holdout_to_train.distance[calibration_index]
    duplicates = calibration_distances < DUPLICATE_DISTANCE
    if duplicates.all():
        raise InputError(
            "every calibration holdout scan is a copy of a training scan (1 - NCC below "
            f"{DUPLICATE_DISTANCE:g}); holdout scans must be patients the generator never saw"
        )
    duplicate_ids = [sets["holdout"][int(i)].scan_id for i in calibration_index[duplicates]]
    if duplicate_ids:
        logger.warning("%d holdout scan(s) duplicate a training scan and are left out of the copy calibration", len(duplicate_ids))
    threshold = calibrate_threshold(calibration_distances[~duplicates], quantile=config.copy_quantile, ratio=config.copy_distance_ratio)
    threshold["excluded_duplicates"] = duplicate_ids
    memorization = _memorization_section(sets, to_train, to_holdout, holdout_to_train, threshold, calibration_index)
    memorization["data_copying_test"] = data_copying_test(
        features["train"], features["holdout"], features["synthetic"], holdout_to_train.distance, to_train.distance, rng=rng
    )

    candidates = np.concatenate([volumes["train"], volumes["holdout"][attack_index]])
    scores = nearest_references(candidates, volumes["synthetic"], settings, progress=progress).distance
    attack = membership_attack(
        scores[: len(sets["train"])],
        scores[len(sets["train"]) :],
        n_bootstrap=config.n_bootstrap,
        confidence=config.confidence,
        rng=rng,
        min_nonmembers=config.min_attack_nonmembers,
    )
    attack["holdout_split"] = {"calibration": int(len(calibration_index)), "attack": int(len(attack_index))}

    utility = utility_section(
        sets["train"],
        sets["holdout"],
        sets["synthetic"],
        epochs=config.utility_epochs,
        min_per_class=config.utility_min_per_class,
        n_bootstrap=config.n_bootstrap,
        confidence=config.confidence,
        seed=config.seed,
    )
    result = {
        "evaluation": {
            "id": evaluation_id,
            "extractor": extractor.info.to_dict(),
            "counts": {name: len(scans) for name, scans in sets.items()},
            "grid": int(grids["train"]),
        },
        "fidelity": fidelity,
        "memorization": memorization,
        "attack": attack,
        "utility": utility,
    }
    if private_dir is not None:
        write_private_evidence(Path(private_dir), evaluation_id, sets, volumes, to_train, to_holdout, memorization)
    return result


def _memorization_section(sets, to_train, to_holdout, holdout_to_train, threshold, calibration_index) -> dict[str, Any]:
    """Build the ``memorization`` section from the three searches and the threshold."""
    from medgan.evaluation.stats import finite_or_none

    limit = threshold["distance_threshold"]
    similarity_limit = threshold["similarity_threshold"]
    holdout_median = float(np.median(holdout_to_train.distance))
    per_scan, flagged = [], []
    for row, scan in enumerate(sets["synthetic"]):
        distance = float(to_train.distance[row])
        is_copy = bool(distance < limit)
        nearest_train = sets["train"][int(to_train.index[row])].scan_id
        entry = {
            "synthetic": scan.scan_id,
            "nearest_train": nearest_train,
            "similarity_train": finite_or_none(to_train.similarity[row]),
            "nearest_holdout": sets["holdout"][int(to_holdout.index[row])].scan_id,
            "similarity_holdout": finite_or_none(to_holdout.similarity[row]),
            "distance_ratio": finite_or_none(distance / holdout_median) if holdout_median > 0 else None,
            "flipped": bool(to_train.flipped[row]),
            "shift_voxels": [int(v) for v in to_train.shift[row]],
            "blur_voxels": finite_or_none(float(to_train.blur[row])) if to_train.blur is not None else 0.0,
            "flagged": is_copy,
            "authentic": not is_copy,
        }
        per_scan.append(entry)
        if is_copy:
            flagged.append(
                {
                    "synthetic": scan.scan_id,
                    "nearest_train": nearest_train,
                    "similarity": finite_or_none(to_train.similarity[row]),
                    "threshold": finite_or_none(similarity_limit),
                }
            )
    synthetic_median = float(np.median(to_train.distance))
    ratio = synthetic_median / holdout_median if holdout_median > 0 else None
    return {
        "flagged": flagged,
        "per_scan": per_scan,
        "rule": threshold["rule"],
        "threshold": {key: finite_or_none(value) if isinstance(value, float) else value for key, value in threshold.items() if key != "rule"},
        "similarity": (
            "normalised cross-correlation after Gaussian smoothing, best shift and left-right flip, and the best "
            "matched extra blur of the training scan where that match is specific; invariant to a*x+b intensity rescaling"
        ),
        "distance_ratio": {
            "value": finite_or_none(ratio),
            "definition": "median synthetic-to-train distance / median holdout-to-train distance; well below 1 means synthetic scans sit closer to training scans than new patients do",
            "median_synthetic_to_train": finite_or_none(synthetic_median),
            "median_holdout_to_train": finite_or_none(holdout_median),
        },
        "blocks_release": bool(flagged),
        "policy": "by default a flagged copy blocks release of the whole set; removing flagged scans and releasing the rest is an explicit, non-private step recorded on the dataset card",
    }
