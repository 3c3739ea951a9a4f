"""Epsilon from a DP-SGD history: golden values, independent oracles and PRV fallback."""

from __future__ import annotations

import math

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from medgan.errors import PrivacyError
from medgan.privacy.accounting import RDP_ORDERS, TargetUnreachableError, compute_epsilon, noise_for_target
from .privacy_oracles import gaussian_epsilon, rdp_epsilon

DELTA = 1e-5
INTEGER_ORDERS = [int(order) for order in RDP_ORDERS if float(order).is_integer()]

# Golden values, computed once on 2026-12-04 with opacus 1.6 (PRV upper bound at
# eps_error 0.01; RDP over medgan's RDP_ORDERS), delta 1e-5. Each is also checked
# against an independent oracle below, so a drift in either shows up.
GOLDEN = {
    "sigma1.0-q0.05-200": ([(1.0, 0.05, 200)], 4.776242289407963, 5.367640841571381),
    "sigma1.1-q0.01-1000": ([(1.1, 0.01, 1000)], 1.525472649316146, 1.7117700912203435),
    "two-segments": ([(1.0, 0.05, 100), (2.0, 0.05, 100)], 3.6834098964732878, 4.208095935631788),
    "sigma0.8-q0.004-5000": ([(0.8, 0.004, 5000)], 2.509272027539252, 2.92523658148822),
}


def test_oracle_reproduces_opacus_docstring_example():
    # Opacus' analysis/rdp.py documents epsilon 0.336 for this history at orders 2..32.
    epsilon = rdp_epsilon([(1.0, 1e-5, 10), (3.0, 1e-4, 4)], 1e-5, range(2, 33))
    assert epsilon == pytest.approx(0.336, abs=5e-4)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_rdp_golden(name):
    history, _, golden_rdp = GOLDEN[name]
    assert compute_epsilon(history, DELTA).epsilon_rdp == pytest.approx(golden_rdp, rel=1e-9)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_prv_golden(name):
    history, golden_prv, _ = GOLDEN[name]
    result = compute_epsilon(history, DELTA)
    assert result.epsilon == pytest.approx(golden_prv, rel=1e-6)
    assert result.accountant == "prv"


@pytest.mark.filterwarnings("ignore:Optimal order:UserWarning")
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_rdp_matches_independent_oracle(name):
    history, _, _ = GOLDEN[name]
    integer_only = RDPAccountant()
    integer_only.history = list(history)
    opacus_value, _ = integer_only.get_privacy_spent(delta=DELTA, alphas=INTEGER_ORDERS)
    assert opacus_value == pytest.approx(rdp_epsilon(history, DELTA, INTEGER_ORDERS), rel=1e-9)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_rdp_not_above_integer_oracle(name):
    # Fractional orders can only tighten the bound found at integer orders.
    history, _, _ = GOLDEN[name]
    assert compute_epsilon(history, DELTA).epsilon_rdp <= rdp_epsilon(history, DELTA, INTEGER_ORDERS) + 1e-9


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_prv_tighter_than_rdp(name):
    history, _, _ = GOLDEN[name]
    result = compute_epsilon(history, DELTA)
    assert result.epsilon_prv < result.epsilon_rdp


@pytest.mark.parametrize(("sigma", "steps"), [(2.0, 10), (5.0, 4), (1.0, 1)], ids=["s2-t10", "s5-t4", "s1-t1"])
def test_prv_bounds_exact_gaussian(sigma, steps):
    # Without subsampling the exact epsilon is known; PRV's upper bound lies just above it.
    exact = gaussian_epsilon(sigma, steps, DELTA)
    result = compute_epsilon([(sigma, 1.0, steps)], DELTA)
    assert result.epsilon_prv >= exact
    assert result.epsilon_prv <= exact + 0.025


def test_rdp_bounds_exact_gaussian():
    exact = gaussian_epsilon(2.0, 10, DELTA)
    assert compute_epsilon([(2.0, 1.0, 10)], DELTA).epsilon_rdp >= exact


def test_segments_compose_like_one():
    split = compute_epsilon([(1.0, 0.05, 120), (1.0, 0.05, 80)], DELTA, accountant="rdp")
    whole = compute_epsilon([(1.0, 0.05, 200)], DELTA, accountant="rdp")
    assert split.epsilon == pytest.approx(whole.epsilon, rel=1e-12)


def test_rdp_accountant_requested():
    result = compute_epsilon([(1.0, 0.05, 200)], DELTA, accountant="rdp")
    assert result.accountant == "rdp"
    assert result.epsilon == result.epsilon_rdp
    assert result.epsilon_prv == pytest.approx(GOLDEN["sigma1.0-q0.05-200"][1], rel=1e-6)


def test_epsilon_grows_with_steps():
    shorter = compute_epsilon([(1.0, 0.05, 100)], DELTA, accountant="rdp").epsilon
    longer = compute_epsilon([(1.0, 0.05, 200)], DELTA, accountant="rdp").epsilon
    assert shorter < longer


def test_zero_noise_is_infinite():
    result = compute_epsilon([(1.0, 0.05, 10), (0.0, 0.05, 3)], DELTA)
    assert result.epsilon == math.inf
    assert not result.is_finite
    assert "noise multiplier 0" in result.note


def test_empty_history_spends_nothing():
    result = compute_epsilon([], DELTA)
    assert result.epsilon == 0.0


def test_zero_rate_steps_spend_nothing():
    result = compute_epsilon([(0.0, 0.0, 5)], DELTA)
    assert result.epsilon == 0.0


@pytest.mark.parametrize(
    "history",
    [[(1.0, 1.5, 10)], [(-1.0, 0.1, 10)], [(1.0, 0.1, 2.5)], [(1.0, 0.1)], [(math.nan, 0.1, 3)]],
    ids=["rate-above-1", "negative-noise", "fractional-steps", "short-entry", "nan-noise"],
)
def test_invalid_history_rejected(history):
    with pytest.raises(PrivacyError):
        compute_epsilon(history, DELTA)


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-5], ids=["zero", "one", "negative"])
def test_invalid_delta_rejected(delta):
    with pytest.raises(PrivacyError, match="Delta"):
        compute_epsilon([(1.0, 0.05, 10)], delta)


def test_unknown_accountant_rejected():
    with pytest.raises(PrivacyError, match="gdp"):
        compute_epsilon([(1.0, 0.05, 10)], DELTA, accountant="gdp")


# Real inputs on which Opacus 1.6's PRV accountant fails numerically although the RDP
# bound is finite: it returns inf for a tiny noise multiplier, and raises ValueError
# ("Floating point errors will dominate") for a very small delta.
PRV_FAILURES = {
    "tiny-noise-returns-inf": ([(0.05, 0.5, 5)], 1e-5),
    "tiny-delta-raises": ([(1.0, 0.05, 200)], 1e-15),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.filterwarnings("ignore:Optimal order:UserWarning")
@pytest.mark.parametrize("name", sorted(PRV_FAILURES))
def test_prv_failure_is_real(name):
    history, delta = PRV_FAILURES[name]
    accountant = PRVAccountant()
    accountant.history = list(history)
    try:
        value = accountant.get_epsilon(delta)
    except (RuntimeError, ValueError):
        value = math.nan
    assert not math.isfinite(value)


@pytest.mark.parametrize("name", sorted(PRV_FAILURES))
def test_prv_failure_falls_back_to_rdp(name):
    history, delta = PRV_FAILURES[name]
    result = compute_epsilon(history, delta)
    assert result.accountant == "rdp"
    assert result.epsilon_prv is None
    assert math.isfinite(result.epsilon)
    assert result.epsilon == result.epsilon_rdp
    assert "Fell back to the RDP accountant" in result.note


def test_noise_for_target_rdp_within_tolerance():
    noise = noise_for_target(4.0, DELTA, 0.05, 200, accountant="rdp")
    epsilon = compute_epsilon([(noise, 0.05, 200)], DELTA, accountant="rdp").epsilon
    assert epsilon <= 4.0
    assert epsilon >= 4.0 * 0.99


def test_noise_for_target_prv_within_tolerance():
    noise = noise_for_target(4.0, DELTA, 0.05, 200)
    epsilon = compute_epsilon([(noise, 0.05, 200)], DELTA).epsilon
    assert epsilon <= 4.0
    assert epsilon >= 4.0 * 0.99


@pytest.mark.slow
def test_noise_for_target_prv_below_rdp():
    # The tighter accountant needs less noise for the same target.
    assert noise_for_target(4.0, DELTA, 0.05, 200) < noise_for_target(4.0, DELTA, 0.05, 200, accountant="rdp")


def test_noise_for_target_prv_failure_uses_rdp():
    # PRV raises at every point for this delta; the search returns the RDP result instead.
    with_fallback = noise_for_target(4.0, 1e-15, 0.05, 200)
    assert with_fallback == noise_for_target(4.0, 1e-15, 0.05, 200, accountant="rdp")


def test_noise_for_target_unreachable():
    with pytest.raises(TargetUnreachableError, match="cannot be reached") as caught:
        noise_for_target(0.1, DELTA, 0.5, 2, accountant="rdp", max_noise_multiplier=10.0)
    assert caught.value.epsilon_at_max > 0.1


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        ((0.0, DELTA, 0.05, 10), "Target epsilon"),
        ((1.0, DELTA, 1.0, 10), "Sample rate"),
        ((1.0, DELTA, 0.05, 0), "Step count"),
        ((1.0, 0.2 * 5, 0.05, 10), "Delta"),
    ],
    ids=["zero-target", "rate-one", "zero-steps", "delta-one"],
)
def test_noise_for_target_invalid(arguments, pattern):
    with pytest.raises(PrivacyError, match=pattern):
        noise_for_target(*arguments, accountant="rdp")


# Plans whose PRV grid outgrows memory: numpy refuses the allocation with
# _ArrayMemoryError (a MemoryError) before these limits were checked.
PRV_GRID_TOO_LARGE = {
    "ten-million-steps": ([(1.0, 0.1, 10_000_000)], 1e-5),
    "near-zero-noise": ([(7.4e-5, 0.1, 10)], 1e-5),
}


@pytest.mark.parametrize("name", sorted(PRV_GRID_TOO_LARGE))
def test_prv_grid_too_large_is_real(name):
    history, delta = PRV_GRID_TOO_LARGE[name]
    accountant = PRVAccountant()
    accountant.history = list(history)
    with pytest.raises(MemoryError):
        accountant.get_epsilon(delta)


@pytest.mark.parametrize("name", sorted(PRV_GRID_TOO_LARGE))
def test_prv_grid_too_large_falls_back_to_rdp(name):
    history, delta = PRV_GRID_TOO_LARGE[name]
    result = compute_epsilon(history, delta)
    assert (result.accountant, result.epsilon_prv, result.epsilon) == ("rdp", None, result.epsilon_rdp)


def test_prv_grid_too_large_noted():
    result = compute_epsilon(*PRV_GRID_TOO_LARGE["ten-million-steps"])
    assert "Fell back to the RDP accountant" in result.note


def test_prv_grid_too_large_within_rdp_oracle():
    history, delta = PRV_GRID_TOO_LARGE["ten-million-steps"]
    assert compute_epsilon(history, delta).epsilon <= rdp_epsilon(history, delta, INTEGER_ORDERS) + 1e-9


def test_prv_grid_limit_checked_before_allocation():
    # The grid size is checked first, so a machine with enough memory to start the
    # allocation does not spend minutes and tens of GiB on it either.
    result = compute_epsilon(*PRV_GRID_TOO_LARGE["ten-million-steps"])
    assert "its grid would need" in result.note
