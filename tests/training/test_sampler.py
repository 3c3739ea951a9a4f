"""Patient-level Poisson sampling: one scan per sampled patient, rate q per patient."""

from __future__ import annotations

import pytest
import torch

from medgan.errors import ConfigError
from medgan.training.sampler import PatientPoissonSampler

# Patient 0 has five scans, the others one each.
PATIENT_SCANS = [[0, 1, 2, 3, 4], [5], [6], [7]]


def _draws(steps=4000, rate=0.25, seed=0):
    sampler = PatientPoissonSampler(PATIENT_SCANS, rate, torch.Generator().manual_seed(seed))
    return [sampler.sample() for _ in range(steps)]


def test_sampler_one_scan_per_patient():
    assert all(len(patients) == len(scans) for patients, scans in _draws(500))


def test_sampler_scans_belong_to_patients():
    assert all(scan in PATIENT_SCANS[p] for patients, scans in _draws(500) for p, scan in zip(patients, scans))


def test_sampler_multi_scan_patient_rate_equals_q():
    draws = _draws()
    rate = sum(0 in patients for patients, _ in draws) / len(draws)
    assert abs(rate - 0.25) < 0.025


def test_sampler_single_scan_patient_rate_equals_q():
    draws = _draws()
    rate = sum(3 in patients for patients, _ in draws) / len(draws)
    assert abs(rate - 0.25) < 0.025


def test_sampler_yields_empty_batches():
    assert any(not scans for _, scans in _draws(100))


def test_sampler_same_seed_same_draws():
    assert _draws(50, seed=3) == _draws(50, seed=3)


def test_sampler_draws_independent_of_scan_counts():
    # The random stream consumed per step does not depend on how many scans each patient has.
    one = PatientPoissonSampler([[0], [1], [2], [3]], 0.25, torch.Generator().manual_seed(5))
    many = PatientPoissonSampler(PATIENT_SCANS, 0.25, torch.Generator().manual_seed(5))
    assert [one.sample()[0] for _ in range(50)] == [many.sample()[0] for _ in range(50)]


@pytest.mark.parametrize("rate", [0.0, 1.0, 1.5])
def test_sampler_rate_out_of_range_rejected(rate):
    with pytest.raises(ConfigError, match="sample rate"):
        PatientPoissonSampler(PATIENT_SCANS, rate, torch.Generator())
