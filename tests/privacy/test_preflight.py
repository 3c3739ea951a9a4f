"""Pre-flight validation of a DP plan: the accountant failure cases and the plan's values."""

from __future__ import annotations

import math

import pytest

from medgan.errors import PrivacyError
from medgan.privacy.accounting import compute_epsilon
from medgan.privacy.config import PrivacyConfig
from medgan.privacy.preflight import (
    MAX_NOISE_TO_SIGNAL,
    MAX_STEPS,
    MAX_TARGET_EPSILON,
    NOT_PRIVATE_WARNING,
    assess_plan,
    default_delta,
    plan_privacy,
)


def fixed_noise(noise_multiplier: float, **fields) -> PrivacyConfig:
    return PrivacyConfig(target_epsilon=None, noise_multiplier=noise_multiplier, **fields)


# A tiny cohort: 20 patients, batch 10 (sample rate 0.5). One epoch is 2 steps.
@pytest.mark.parametrize("steps", [2, 4], ids=["one-epoch", "two-epochs"])
def test_target_fifty_rejected(steps):
    with pytest.raises(PrivacyError, match="above max_epsilon 10"):
        plan_privacy(PrivacyConfig(target_epsilon=50.0), n_patients=20, batch_size=10, steps=steps)


def test_target_tenth_one_epoch_rejected():
    with pytest.raises(PrivacyError, match="cannot be reached with 20 patients"):
        plan_privacy(PrivacyConfig(target_epsilon=0.1), n_patients=20, batch_size=10, steps=2)


def test_delta_above_inverse_n_rejected():
    with pytest.raises(PrivacyError, match=r"Delta 0.1 is at least 1 / n_patients"):
        plan_privacy(PrivacyConfig(delta=0.1), n_patients=20, batch_size=10, steps=2)


def test_delta_equal_inverse_n_rejected():
    with pytest.raises(PrivacyError, match="at least 1 / n_patients"):
        plan_privacy(PrivacyConfig(delta=0.05), n_patients=20, batch_size=10, steps=2)


def test_sample_rate_one_rejected():
    with pytest.raises(PrivacyError, match="sample rate 1 >= 1"):
        plan_privacy(fixed_noise(1.0), n_patients=20, batch_size=20, steps=2)


def test_single_patient_rejected():
    with pytest.raises(PrivacyError, match="at least 2"):
        plan_privacy(fixed_noise(1.0), n_patients=1, batch_size=1, steps=2)


def test_both_target_and_noise_rejected():
    config = PrivacyConfig(target_epsilon=4.0, noise_multiplier=1.0)
    with pytest.raises(PrivacyError, match="both of target_epsilon and noise_multiplier"):
        plan_privacy(config, n_patients=1000, batch_size=50, steps=100)


def test_neither_target_nor_noise_rejected():
    config = PrivacyConfig(target_epsilon=None, noise_multiplier=None)
    with pytest.raises(PrivacyError, match="neither of target_epsilon and noise_multiplier"):
        plan_privacy(config, n_patients=1000, batch_size=50, steps=100)


def test_zero_noise_rejected():
    with pytest.raises(PrivacyError, match="enabled: false"):
        plan_privacy(fixed_noise(0.0), n_patients=1000, batch_size=50, steps=100)


def test_fixed_noise_above_max_epsilon_rejected():
    with pytest.raises(PrivacyError, match="above max_epsilon"):
        plan_privacy(fixed_noise(0.5), n_patients=1000, batch_size=50, steps=2000)


def test_hopeless_noise_rejected():
    with pytest.raises(PrivacyError, match="noise-to-signal"):
        plan_privacy(fixed_noise(12.0), n_patients=1000, batch_size=10, steps=100)


def test_default_delta_small_cohort():
    assert default_delta(20) == 1e-5


def test_default_delta_large_cohort():
    assert default_delta(1_000_000) == pytest.approx(1e-7)


def test_fixed_noise_plan_values():
    plan = plan_privacy(fixed_noise(1.0), n_patients=1000, batch_size=50, steps=200)
    assert plan.private
    assert plan.sample_rate == 0.05
    assert plan.steps == 200
    assert plan.delta == 1e-5
    assert plan.noise_multiplier == 1.0
    assert plan.noise_to_signal == pytest.approx(0.02)
    assert plan.history == [(1.0, 0.05, 200)]


def test_plan_epsilon_recomputed_from_history():
    plan = plan_privacy(fixed_noise(1.0), n_patients=1000, batch_size=50, steps=200)
    fresh = compute_epsilon(plan.history, plan.delta)
    assert plan.epsilon.epsilon == fresh.epsilon


def test_plan_delta_from_config():
    plan = plan_privacy(fixed_noise(1.0, delta=1e-6), n_patients=1000, batch_size=50, steps=200)
    assert plan.delta == 1e-6


def test_target_plan_reaches_target():
    plan = plan_privacy(
        PrivacyConfig(target_epsilon=6.0, accountant="rdp"), n_patients=1000, batch_size=50, steps=200
    )
    assert plan.epsilon.epsilon <= 6.0
    assert plan.epsilon.epsilon >= 6.0 * 0.99
    assert plan.target_epsilon == 6.0


def test_small_cohort_warned():
    plan = plan_privacy(fixed_noise(1.0), n_patients=40, batch_size=4, steps=10)
    assert any("Only 40 patients" in message for message in plan.warnings)


def test_slow_learning_warned():
    plan = plan_privacy(fixed_noise(1.0), n_patients=1000, batch_size=50, steps=200)
    assert any("slow, noisy learning" in message for message in plan.warnings)


def test_low_noise_not_warned():
    plan = plan_privacy(fixed_noise(1.0), n_patients=100_000, batch_size=1000, steps=100)
    assert plan.warnings == []


def test_assess_reports_hopeless_noise():
    # The planning aid returns a warning where training would reject the plan.
    plan = assess_plan(n_patients=1000, batch_size=10, steps=100, noise_multiplier=12.0, accountant="rdp")
    assert plan.noise_to_signal >= MAX_NOISE_TO_SIGNAL
    assert any("learning is hopeless" in message for message in plan.warnings)


def test_assess_zero_noise_infinite():
    plan = assess_plan(n_patients=1000, batch_size=10, steps=100, noise_multiplier=0.0)
    assert plan.epsilon.epsilon == math.inf


def test_disabled_plan_not_private():
    plan = plan_privacy(PrivacyConfig(enabled=False), n_patients=20, batch_size=10, steps=2)
    assert not plan.private
    assert plan.epsilon.epsilon == math.inf
    assert plan.warnings == [NOT_PRIVATE_WARNING]


def test_steps_above_maximum_rejected():
    with pytest.raises(PrivacyError, match="above the maximum of 10,000,000 steps"):
        assess_plan(n_patients=100, batch_size=10, steps=MAX_STEPS + 1, noise_multiplier=1.0)


@pytest.mark.parametrize("target", [MAX_TARGET_EPSILON * 1.01, 1e9, math.inf, math.nan], ids=["just-above", "1e9", "inf", "nan"])
def test_target_above_maximum_rejected(target):
    with pytest.raises(PrivacyError, match="at most 100"):
        assess_plan(n_patients=100, batch_size=10, steps=10, target_epsilon=target)
