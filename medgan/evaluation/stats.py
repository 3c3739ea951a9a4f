"""Small statistics helpers shared by the evaluation sections.

Every function here returns plain floats or ``None`` and never NaN, so a report can be
serialised to strict JSON and read without surprises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["bootstrap_interval", "not_computable", "finite_or_none", "roc_auc", "estimate"]


def finite_or_none(value: float | None) -> float | None:
    """Return ``value`` as a float, or None when it is missing or not finite."""
    if value is None:
        return None
    value = float(np.real(value))
    return value if np.isfinite(value) else None


def not_computable(reason: str, counts: dict[str, int]) -> dict[str, Any]:
    """Return the entry that replaces a metric that cannot be computed on these counts."""
    return {"value": None, "status": "not computable", "reason": reason, "counts": dict(counts)}


def bootstrap_interval(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    first: np.ndarray,
    second: np.ndarray,
    *,
    n_bootstrap: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[float | None, float | None]:
    """Return a percentile bootstrap interval of ``statistic(first, second)``.

    Both sets are resampled with replacement, independently, because they are
    independent samples. Resamples on which the statistic fails (a set that collapsed to
    one distinct row, say) are skipped. With fewer than ten usable resamples the
    interval is (None, None).
    """
    values = []
    for _ in range(n_bootstrap):
        a = first[rng.integers(0, len(first), len(first))]
        b = second[rng.integers(0, len(second), len(second))]
        try:
            value = statistic(a, b)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(value):
            values.append(float(value))
    if len(values) < 10:
        return None, None
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def estimate(value: float | None, interval: tuple[float | None, float | None], **extra: Any) -> dict[str, Any]:
    """Return a metric entry with its value and confidence interval."""
    entry: dict[str, Any] = {"value": finite_or_none(value), "ci_low": finite_or_none(interval[0]), "ci_high": finite_or_none(interval[1])}
    entry.update(extra)
    return entry


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Return the ROC AUC of scores where larger means "positive" (Mann-Whitney U / (m n)).

    Ties count one half, which is the standard convention and makes identical score
    distributions give exactly 0.5.
    """
    positive = np.asarray(positive, dtype=np.float64)
    negative = np.asarray(negative, dtype=np.float64)
    if positive.size == 0 or negative.size == 0:
        raise ValueError("ROC AUC needs at least one positive and one negative score")
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty_like(scores)
    sorted_scores = scores[order]
    # Average ranks over ties.
    unique, first_index, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first_index + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    rank_sum = ranks[: positive.size].sum()
    u_statistic = rank_sum - positive.size * (positive.size + 1) / 2.0
    return float(u_statistic / (positive.size * negative.size))
