"""Utility of a synthetic set for a downstream task: train on synthetic, test on real.

For each label the cohort carries, a small 3D classifier is trained four ways and
tested on real holdout scans: on real training scans (the reference), on synthetic
scans (TSTR), and on real plus synthetic scans (augmentation) against real alone.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from medgan.evaluation.stats import estimate, not_computable

__all__ = ["utility_section"]

logger = logging.getLogger(__name__)

_GRID = 16


def _classifier(classes: int):
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(1, 8, 3, stride=2, padding=1),
        nn.GELU(),
        nn.Conv3d(8, 16, 3, stride=2, padding=1),
        nn.GELU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(16, classes),
    )


def _downsample(volumes: np.ndarray):
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(volumes, dtype=np.float32))
    if tensor.shape[-1] > _GRID:
        tensor = F.interpolate(tensor, size=(_GRID,) * 3, mode="trilinear", align_corners=False)
    return tensor  # (N, 1, 16, 16, 16)


def _fit_predict(train_x, train_y: np.ndarray, test_x, classes: int, epochs: int, seed: int) -> np.ndarray:
    import torch

    torch.manual_seed(seed)
    model = _classifier(classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    targets = torch.from_numpy(train_y.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(targets), generator=generator)
        for start in range(0, len(order), 16):
            index = order[start : start + 16]
            loss = torch.nn.functional.cross_entropy(model(train_x[index]), targets[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.inference_mode():
        return model.eval()(test_x).argmax(dim=1).numpy()


def _balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    recalls = [float((predicted[truth == c] == c).mean()) for c in np.unique(truth)]
    return float(np.mean(recalls))


def _score(truth: np.ndarray, predicted: np.ndarray, rng: np.random.Generator, n_bootstrap: int, confidence: float) -> dict[str, Any]:
    values = []
    for _ in range(n_bootstrap):
        index = rng.integers(0, len(truth), len(truth))
        if len(np.unique(truth[index])) < 2:
            continue
        values.append(_balanced_accuracy(truth[index], predicted[index]))
    tail = (1 - confidence) / 2 * 100
    interval = tuple(np.percentile(values, [tail, 100 - tail])) if len(values) >= 10 else (None, None)
    return estimate(_balanced_accuracy(truth, predicted), interval, metric="balanced accuracy on real holdout scans")


def utility_section(
    train: list[Any],
    holdout: list[Any],
    synthetic: list[Any],
    *,
    epochs: int,
    min_per_class: int,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Return the ``utility`` section: one entry per label, or the reason it was skipped."""
    keys = sorted({key for scan in [*train, *holdout, *synthetic] for key in scan.labels})
    if not keys:
        return {"status": "skipped", "reason": "the scans carry no labels", "tasks": {}}
    tasks: dict[str, Any] = {}
    rng = np.random.default_rng(seed)
    for key in keys:
        values = sorted({scan.labels[key] for scan in train if key in scan.labels})
        counts = {
            name: {value: sum(1 for scan in scans if scan.labels.get(key) == value) for value in values}
            for name, scans in (("train", train), ("holdout", holdout), ("synthetic", synthetic))
        }
        usable = [value for value in values if all(counts[name][value] >= min_per_class for name in counts)]
        if len(usable) < 2:
            tasks[key] = not_computable(
                f"needs two classes with at least {min_per_class} scans each in train, holdout and synthetic", counts
            )
            continue
        code = {value: index for index, value in enumerate(usable)}

        def select(scans: list[Any]) -> tuple[Any, np.ndarray]:
            chosen = [scan for scan in scans if scan.labels.get(key) in code]
            volumes = np.stack([scan.array for scan in chosen])  # (N, 1, G, G, G)
            return _downsample(volumes), np.array([code[scan.labels[key]] for scan in chosen])

        import torch

        real_x, real_y = select(train)
        test_x, test_y = select(holdout)
        syn_x, syn_y = select(synthetic)
        both_x, both_y = torch.cat([real_x, syn_x]), np.concatenate([real_y, syn_y])
        runs = {
            "train_real": _fit_predict(real_x, real_y, test_x, len(usable), epochs, seed),
            "train_synthetic": _fit_predict(syn_x, syn_y, test_x, len(usable), epochs, seed),
            "train_real_plus_synthetic": _fit_predict(both_x, both_y, test_x, len(usable), epochs, seed),
        }
        tasks[key] = {
            "classes": usable,
            "counts": counts,
            **{name: _score(test_y, predicted, rng, n_bootstrap, confidence) for name, predicted in runs.items()},
        }
    return {"status": "done", "classifier": "3D CNN, 2 conv layers, 16^3 input", "tasks": tasks}
