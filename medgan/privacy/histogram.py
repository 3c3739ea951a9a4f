"""A differentially private label prior: a Gaussian-noised histogram of patients' labels.

The conditional generator samples labels from a prior. Estimating that prior from the
training data uses patient data, so it must be charged to epsilon. Here each patient
contributes one unit of weight, spread over the label values of their scans (a patient
with two scans labelled ``a`` and one labelled ``b`` adds 2/3 to ``a`` and 1/3 to ``b``).
Adding or removing one patient then changes the count vector by a vector of L1 norm 1,
hence L2 norm at most 1, so Gaussian noise of standard deviation ``noise_multiplier`` on
every count is the Gaussian mechanism with sensitivity 1. That is exactly one step of
the subsampled Gaussian mechanism with sample rate 1, so its cost is the history entry
``(noise_multiplier, 1.0, 1)``, composed with the DP-SGD steps by the same accountant.

Rounding negative noisy counts to zero and normalising is post-processing and costs
nothing more.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from medgan.errors import PrivacyError

__all__ = ["LabelHistogram", "dp_label_histogram"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelHistogram:
    """A DP estimate of the label distribution and its privacy cost.

    Attributes:
        categories: The label values, in the order of ``probabilities``.
        probabilities: The estimated prior; non-negative and summing to 1.
        history_entry: ``(noise_multiplier, 1.0, 1)``, to append to the run's history.
    """

    categories: tuple[Hashable, ...]
    probabilities: tuple[float, ...]
    history_entry: tuple[float, float, int]


def dp_label_histogram(
    labels_by_patient: Mapping[str, Sequence[Hashable]],
    categories: Sequence[Hashable],
    *,
    noise_multiplier: float,
    generator: np.random.Generator,
) -> LabelHistogram:
    """Estimate the label prior with the Gaussian mechanism, one unit of weight per patient.

    Args:
        labels_by_patient: Each patient's scan labels (one entry per scan); for several
            label columns, pass each scan's combination as a tuple, so the histogram is
            over combinations and the sensitivity stays 1.
        categories: Every possible label value, fixed by the configuration rather than
            read from the data (the set of values present would itself leak).
        noise_multiplier: Standard deviation of the noise on each count, > 0.
        generator: Source of the noise; in secure mode, one seeded from OS entropy.

    Returns:
        The :class:`LabelHistogram`; its ``history_entry`` must be added to the run's
        history, or epsilon will be understated.

    Raises:
        PrivacyError: The noise multiplier is not positive, a category repeats, a patient
            has no scans, or a label is not among ``categories``.
    """
    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise PrivacyError(
            f"Noise multiplier {noise_multiplier} for the label histogram is invalid; it must be > 0, "
            "because a noiseless histogram of training labels is not private."
        )
    order = {category: index for index, category in enumerate(categories)}
    if len(order) != len(categories) or not categories:
        raise PrivacyError(f"Label categories {list(categories)!r} must be a non-empty list without repeats.")

    counts = np.zeros(len(order), dtype=np.float64)
    for patient_index, labels in enumerate(labels_by_patient.values()):
        if not labels:
            raise PrivacyError(f"Patient number {patient_index} has no scans; every patient needs at least one label.")
        weight = 1.0 / len(labels)
        for label in labels:
            if label not in order:
                raise PrivacyError(
                    f"Label {label!r} is not among the configured categories {list(categories)!r}; "
                    "add it to the configuration."
                )
            counts[order[label]] += weight

    noisy = counts + generator.normal(0.0, noise_multiplier, size=counts.shape)
    clipped = np.clip(noisy, 0.0, None)
    total = clipped.sum()
    if total <= 0.0:
        logger.warning("Every noisy label count was at most 0; using a uniform label prior")
        probabilities = np.full(len(order), 1.0 / len(order))
    else:
        probabilities = clipped / total
    return LabelHistogram(
        categories=tuple(categories),
        probabilities=tuple(float(value) for value in probabilities),
        history_entry=(float(noise_multiplier), 1.0, 1),
    )
