"""Utility: train on synthetic, test on real, where labels exist."""

from __future__ import annotations

import pytest
from .phantoms import make_phantoms

from medgan.evaluation.utility import utility_section


def _labelled(scans_from, count: int, seed: int, split: str, offset: int = 0):
    volumes = make_phantoms(count, 16, seed)
    labels = []
    for index in range(count):
        bright = index % 2 == 0
        inside = volumes[index] > -1.0
        volumes[index][inside] = 0.6 if bright else -0.4  # the class is the foreground intensity
        labels.append({"contrast": "bright" if bright else "dark"})
    return scans_from(volumes, split, labels=labels, offset=offset)


@pytest.mark.slow
def test_utility_learnable_task_scores_high(scans_from):
    train = _labelled(scans_from, 12, 0, "train")
    holdout = _labelled(scans_from, 10, 1, "holdout", offset=100)
    synthetic = _labelled(scans_from, 12, 2, "synthetic")
    section = utility_section(train, holdout, synthetic, epochs=40, min_per_class=3, n_bootstrap=20, confidence=0.95, seed=0)
    assert section["tasks"]["contrast"]["train_synthetic"]["value"] >= 0.9


def test_utility_without_labels_skipped(scans_from):
    scans = scans_from(make_phantoms(4, 16, 0), "train")
    section = utility_section(scans, scans, scans, epochs=1, min_per_class=1, n_bootstrap=10, confidence=0.95, seed=0)
    assert section["status"] == "skipped"


def test_utility_too_few_per_class_not_computable(scans_from):
    train = _labelled(scans_from, 4, 0, "train")
    section = utility_section(train, train, train, epochs=1, min_per_class=3, n_bootstrap=10, confidence=0.95, seed=0)
    assert section["tasks"]["contrast"]["status"] == "not computable"
