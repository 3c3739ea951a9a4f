"""DP label prior: per-patient weight, noise scale and its history entry."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.errors import PrivacyError
from medgan.privacy.accounting import compute_epsilon
from medgan.privacy.histogram import dp_label_histogram

from .privacy_oracles import gaussian_epsilon


def test_scans_of_one_patient_weigh_one():
    # Patient a has three scans; with negligible noise the prior counts patients, not scans.
    labels = {"pat-a": ["tumour", "tumour", "tumour"], "pat-b": ["healthy"]}
    histogram = dp_label_histogram(
        labels, ["healthy", "tumour"], noise_multiplier=1e-9, generator=np.random.default_rng(0)
    )
    assert histogram.probabilities == pytest.approx((0.5, 0.5))


def test_mixed_patient_split_weight():
    labels = {"pat-a": ["tumour", "healthy"], "pat-b": ["healthy"]}
    histogram = dp_label_histogram(
        labels, ["healthy", "tumour"], noise_multiplier=1e-9, generator=np.random.default_rng(0)
    )
    assert histogram.probabilities == pytest.approx((0.75, 0.25))


def test_noise_matches_seeded_draw():
    # The estimate equals counts plus one normal draw per category of the given scale.
    labels = {f"pat-{index}": ["a"] for index in range(10)}
    expected = np.array([10.0, 0.0]) + np.random.default_rng(3).normal(0.0, 2.0, size=2)
    expected = np.clip(expected, 0.0, None)
    histogram = dp_label_histogram(labels, ["a", "b"], noise_multiplier=2.0, generator=np.random.default_rng(3))
    assert histogram.probabilities == pytest.approx(tuple(expected / expected.sum()))


def test_history_entry_is_gaussian_mechanism():
    histogram = dp_label_histogram({"pat-a": ["a"]}, ["a", "b"], noise_multiplier=5.0,
                                   generator=np.random.default_rng(0))
    assert histogram.history_entry == (5.0, 1.0, 1)
    epsilon = compute_epsilon([histogram.history_entry], 1e-5).epsilon
    assert epsilon >= gaussian_epsilon(5.0, 1, 1e-5)
    assert epsilon <= gaussian_epsilon(5.0, 1, 1e-5) + 0.025


def test_all_negative_counts_uniform():
    # Seed 8 draws noise below -300 on all four counts, so every clipped count is 0.
    histogram = dp_label_histogram({"pat-a": ["a"]}, ["a", "b", "c", "d"], noise_multiplier=1000.0,
                                   generator=np.random.default_rng(8))
    assert histogram.probabilities == (0.25, 0.25, 0.25, 0.25)


def test_unknown_label_rejected():
    with pytest.raises(PrivacyError, match="not among the configured categories"):
        dp_label_histogram({"pat-a": ["c"]}, ["a", "b"], noise_multiplier=1.0, generator=np.random.default_rng(0))


def test_zero_noise_rejected():
    with pytest.raises(PrivacyError, match="not private"):
        dp_label_histogram({"pat-a": ["a"]}, ["a", "b"], noise_multiplier=0.0, generator=np.random.default_rng(0))
