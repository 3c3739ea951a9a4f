"""Membership attack: AUC oracle, memorising vs independent generators, small sets."""

from __future__ import annotations

import numpy as np
import pytest
from .phantoms import make_phantoms

from medgan.evaluation.attack import membership_attack
from medgan.evaluation.memorization import nearest_references
from medgan.evaluation.stats import roc_auc


def test_roc_auc_separated_one():
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0


def test_roc_auc_ties_half():
    assert roc_auc(np.ones(5), np.ones(7)) == 0.5


def test_roc_auc_matches_pairwise_count():
    rng = np.random.default_rng(0)
    positive, negative = rng.normal(size=30), rng.normal(size=20)
    expected = np.mean([(p > n) + 0.5 * (p == n) for p in positive for n in negative])
    assert roc_auc(positive, negative) == pytest.approx(expected)


def _attack(memorising: bool, count: int = 30):
    volumes = make_phantoms(3 * count, 16, 5)
    train, holdout = volumes[:count], volumes[count : 2 * count]
    rng = np.random.default_rng(0)
    if memorising:
        synthetic = np.clip(train + rng.normal(0, 0.05, train.shape), -1, 1).astype(np.float32)
    else:
        synthetic = volumes[2 * count :]
    members = nearest_references(train, synthetic).distance
    nonmembers = nearest_references(holdout, synthetic).distance
    return membership_attack(members, nonmembers, n_bootstrap=50, confidence=0.95, rng=rng)


def test_attack_memorising_generator_high_auc():
    assert _attack(memorising=True)["mia_auc"]["value"] > 0.95


def test_attack_independent_generator_near_half():
    entry = _attack(memorising=False)["mia_auc"]
    assert entry["ci_low"] < 0.5 < entry["ci_high"]


def test_attack_small_set_tpr_not_computable():
    result = membership_attack(np.full(40, 0.1), np.full(40, 0.2), n_bootstrap=20, confidence=0.95, rng=np.random.default_rng(0))
    assert result["tpr_at_1pct_fpr"]["status"] == "not computable"


def test_attack_small_set_reports_counts():
    result = membership_attack(np.full(40, 0.1), np.full(40, 0.2), n_bootstrap=20, confidence=0.95, rng=np.random.default_rng(0))
    assert result["tpr_at_1pct_fpr"]["counts"]["nonmembers"] == 40


def test_attack_tpr_at_one_percent_fpr_value():
    members = np.concatenate([np.zeros(50), np.full(50, 0.5)])  # half the members sit closer than any non-member
    nonmembers = np.linspace(0.1, 1.0, 200)
    result = membership_attack(members, nonmembers, n_bootstrap=20, confidence=0.95, rng=np.random.default_rng(0))
    assert result["tpr_at_1pct_fpr"]["value"] == pytest.approx(0.5)


def test_attack_statement_present():
    result = membership_attack(np.ones(3), np.ones(3), n_bootstrap=20, confidence=0.95, rng=np.random.default_rng(0))
    assert "not a guarantee" in result["statement"]
