"""Epsilon of a DP-SGD history, computed with Opacus' PRV and RDP accountants.

A history is the list ``[(noise_multiplier, sample_rate, steps), ...]`` of the Poisson
subsampled Gaussian mechanisms a run applied, in order, exactly as Opacus' accountants
store it. Epsilon is always recomputed from a history, never copied from a target, so a
report states what the run did rather than what it was asked to do.

The PRV accountant (Gopi et al., 2021) gives the tighter bound and is the default. Its
numerical composition fails for some inputs: it raises ``RuntimeError`` ("Discrete mean
differs significantly from continuous mean", "Cannot compute epsilon"), ``ValueError``
for very small deltas, ``MemoryError`` when its grid outgrows memory (extreme step counts
or tiny noise; grids above :data:`PRV_MAX_GRID_POINTS` are not attempted), or returns
``inf`` where a finite bound exists. In those cases the
RDP bound (Mironov et al., 2019, with the conversion of Balle et al., 2020) is used and
the result's note states it.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from medgan.errors import PrivacyError

__all__ = [
    "History",
    "EpsilonResult",
    "TargetUnreachableError",
    "RDP_ORDERS",
    "compute_epsilon",
    "noise_for_target",
    "validate_history",
    "total_steps",
    "PRV_MAX_GRID_POINTS",
]

logger = logging.getLogger(__name__)

History = list[tuple[float, float, int]]
AccountantName = Literal["prv", "rdp"]

# Opacus' default RDP orders reach 63. Larger orders tighten the bound for small epsilons
# (the conversion term log(1 / delta) / (order - 1) limits epsilon from below), and any
# order gives a valid bound, so adding them never makes the result optimistic.
RDP_ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 96, 128, 192, 256, 384, 512]
)

# PRV and RDP bound the same mechanism. In the tests' golden settings PRV is 6-14 % below
# RDP, so a PRV value under half the RDP value is more likely a numerical failure.
_PRV_RDP_MIN_RATIO = 0.5

# Opacus' defaults for PRV's accuracy: epsilon error 0.01, delta error delta / 1000.
_PRV_EPS_ERROR = 0.01
_PRV_DELTA_ERROR = 1e-3

# PRV discretises the privacy loss on a grid whose size grows with the step count and as
# the noise shrinks. For extreme plans (10^5 steps at noise 1, or noise near 0) it
# requests tens of GiB to PiB from numpy. A plan of 10^5 steps at sample rate 0.01 needs 7.5e6 points
# and about 1.6 GB, so beyond 2e7 points (about 4 GiB) PRV is skipped and RDP reported.
PRV_MAX_GRID_POINTS = 20_000_000
_PRV_BYTES_PER_POINT = 200


class TargetUnreachableError(PrivacyError):
    """No noise multiplier up to the search limit reaches the target epsilon.

    Attributes:
        max_noise_multiplier: The search limit.
        epsilon_at_max: Epsilon spent at that limit.
    """

    def __init__(self, message: str, *, max_noise_multiplier: float, epsilon_at_max: float) -> None:
        super().__init__(message)
        self.max_noise_multiplier = max_noise_multiplier
        self.epsilon_at_max = epsilon_at_max


@dataclass(frozen=True)
class EpsilonResult:
    """Epsilon of one history at one delta, with both accountants' values.

    Attributes:
        epsilon: The reported epsilon; ``math.inf`` when the history gives no privacy.
        delta: The delta of the guarantee.
        accountant: The accountant whose value is ``epsilon`` (``"prv"`` or ``"rdp"``);
            it differs from the requested one only after a fallback, which ``note`` explains.
        epsilon_prv: The PRV accountant's upper bound, or None where PRV failed.
        epsilon_rdp: The RDP accountant's bound.
        note: Plain sentences on fallbacks, disagreements and infinite epsilon; empty
            when there is nothing to say.
    """

    epsilon: float
    delta: float
    accountant: str
    epsilon_prv: float | None
    epsilon_rdp: float
    note: str = ""

    @property
    def is_finite(self) -> bool:
        """Whether the history gives any privacy guarantee at all."""
        return math.isfinite(self.epsilon)


def validate_history(history: Sequence[Sequence[float]]) -> History:
    """Return ``history`` as a list of ``(float, float, int)`` after checking every entry.

    Raises:
        PrivacyError: An entry has the wrong length, a negative or non-finite noise
            multiplier, a sample rate outside [0, 1] or a negative or fractional step count.
    """
    checked: History = []
    for index, entry in enumerate(history):
        if len(entry) != 3:
            raise PrivacyError(
                f"Privacy history entry {index} is {entry!r}; expected (noise_multiplier, sample_rate, steps)."
            )
        noise_multiplier, sample_rate, steps = entry
        noise_multiplier = float(noise_multiplier)
        sample_rate = float(sample_rate)
        if not math.isfinite(noise_multiplier) or noise_multiplier < 0:
            raise PrivacyError(
                f"Privacy history entry {index} has noise multiplier {noise_multiplier}; "
                "it must be a finite number >= 0."
            )
        if not 0.0 <= sample_rate <= 1.0:
            raise PrivacyError(
                f"Privacy history entry {index} has sample rate {sample_rate}; it must be in [0, 1]."
            )
        if isinstance(steps, bool) or int(steps) != steps or steps < 0:
            raise PrivacyError(
                f"Privacy history entry {index} has {steps!r} steps; it must be a whole number >= 0."
            )
        checked.append((noise_multiplier, sample_rate, int(steps)))
    return checked


def total_steps(history: Sequence[Sequence[float]]) -> int:
    """Return the number of DP steps in a history."""
    return sum(int(steps) for _, _, steps in history)


def _validate_delta(delta: float) -> float:
    delta = float(delta)
    if not 0.0 < delta < 1.0:
        raise PrivacyError(f"Delta {delta} is invalid; it must be strictly between 0 and 1 (typically < 1 / n_patients).")
    return delta


def _validate_accountant(accountant: str) -> AccountantName:
    if accountant not in ("prv", "rdp"):
        raise PrivacyError(f"Accountant {accountant!r} is unknown; use 'prv' or 'rdp'.")
    return accountant  # type: ignore[return-value]


def _rdp_epsilon(history: History, delta: float) -> float:
    """Return the RDP accountant's epsilon over :data:`RDP_ORDERS`."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = list(history)
    with warnings.catch_warnings():
        # Opacus warns when the best order is at the end of the list; the bound is
        # still valid there, only possibly loose.
        warnings.simplefilter("ignore")
        epsilon, _ = accountant.get_privacy_spent(delta=delta, alphas=list(RDP_ORDERS))
    return float(epsilon)


def _prv_epsilon(history: History, delta: float) -> float:
    """Return the PRV accountant's upper bound; raise ``_PRVFailure`` on numerical failure."""
    from opacus.accountants import PRVAccountant

    accountant = PRVAccountant()
    accountant.history = list(history)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            points = _prv_grid_points(accountant, delta)
            if points > PRV_MAX_GRID_POINTS:
                raise _PRVFailure(
                    f"its grid would need {points:.3g} points, about {points * _PRV_BYTES_PER_POINT / 2**30:.3g} GiB, "
                    f"above the limit of {PRV_MAX_GRID_POINTS:.3g} points"
                )
            epsilon = float(accountant.get_epsilon(delta, eps_error=_PRV_EPS_ERROR, delta_error=delta * _PRV_DELTA_ERROR))
    except (RuntimeError, ValueError, FloatingPointError, OverflowError, ZeroDivisionError, MemoryError) as error:
        # MemoryError: for extreme inputs (tiny noise or millions of steps) PRV sizes its
        # discretisation grid from the composed distribution's tails and requests terabytes,
        # so numpy fails at once with _ArrayMemoryError, a MemoryError subclass.
        raise _PRVFailure(f"{type(error).__name__}: {error}") from error
    if not math.isfinite(epsilon) or epsilon < 0:
        raise _PRVFailure(f"it returned epsilon {epsilon}")
    return epsilon


def _prv_grid_points(accountant: Any, delta: float) -> int:
    """Return the size of the grid PRV would discretise on, computed before any large allocation.

    Opacus sizes the grid from the composed distribution's tails and the step count; it
    uses an internal method for that, so any failure here counts as a PRV failure.
    """
    from opacus.accountants.analysis.prv import PoissonSubsampledGaussianPRV

    prvs = [PoissonSubsampledGaussianPRV(sample_rate, sigma) for sigma, sample_rate, _ in accountant.history]
    compositions = [steps for _, _, steps in accountant.history]
    domain = accountant._get_domain(
        prvs=prvs, num_self_compositions=compositions, eps_error=_PRV_EPS_ERROR, delta_error=delta * _PRV_DELTA_ERROR
    )
    return int(domain.size)


class _PRVFailure(Exception):
    """PRV's numerical composition failed; the message describes the failure."""


def _active(history: History) -> History:
    """Drop entries that touch no data and merge consecutive entries with equal parameters.

    Steps with sample rate 0 or a step count of 0 cost nothing. Merging makes a history
    that was split (for example by a resume) give exactly the value of an accountant
    that saw every step, as Opacus' ``step`` merges them; PRV's value depends slightly on
    how the composition is split.
    """
    merged: History = []
    for sigma, q, steps in history:
        if steps == 0 or q == 0.0:
            continue
        if merged and merged[-1][0] == sigma and merged[-1][1] == q:
            merged[-1] = (sigma, q, merged[-1][2] + steps)
        else:
            merged.append((sigma, q, steps))
    return merged


def compute_epsilon(
    history: Sequence[Sequence[float]],
    delta: float,
    accountant: str = "prv",
) -> EpsilonResult:
    """Compute epsilon at ``delta`` for a DP-SGD history, with PRV and RDP.

    Both accountants run every time: the requested one gives ``epsilon`` and the other
    cross-checks it. When PRV is requested but fails numerically, the RDP value is used
    and ``note`` states it, because an exception at report time would lose a finished run,
    while RDP is a valid (slightly looser) bound on the same mechanism.

    Args:
        history: ``[(noise_multiplier, sample_rate, steps), ...]`` as Opacus stores it.
        delta: The delta of the (epsilon, delta) guarantee.
        accountant: ``"prv"`` (default) or ``"rdp"``.

    Returns:
        An :class:`EpsilonResult`. A history with a noise multiplier of 0 on any step
        that samples data gives ``epsilon = inf``.

    Raises:
        PrivacyError: The history, delta or accountant name is invalid.
    """
    checked = validate_history(history)
    delta = _validate_delta(delta)
    requested = _validate_accountant(accountant)
    active = _active(checked)

    if not active:
        return EpsilonResult(epsilon=0.0, delta=delta, accountant=requested, epsilon_prv=0.0, epsilon_rdp=0.0,
                             note="No step sampled any data, so no privacy was spent.")

    unprotected = sum(steps for sigma, _, steps in active if sigma == 0.0)
    if unprotected:
        note = (
            f"{unprotected} step(s) ran with noise multiplier 0, which adds no noise: "
            "epsilon is infinite and the run gives no differential-privacy guarantee."
        )
        return EpsilonResult(epsilon=math.inf, delta=delta, accountant=requested, epsilon_prv=math.inf,
                             epsilon_rdp=math.inf, note=note)

    epsilon_rdp = _rdp_epsilon(active, delta)
    notes: list[str] = []
    try:
        epsilon_prv: float | None = _prv_epsilon(active, delta)
    except _PRVFailure as failure:
        epsilon_prv = None
        notes.append(f"The PRV accountant failed numerically ({failure}).")
        logger.warning("PRV accountant failed numerically (%s); using the RDP bound", failure)

    if requested == "prv" and epsilon_prv is None:
        used, epsilon = "rdp", epsilon_rdp
        notes.append("Fell back to the RDP accountant, whose bound is valid but slightly looser.")
    elif requested == "prv":
        used, epsilon = "prv", epsilon_prv
    else:
        used, epsilon = "rdp", epsilon_rdp

    if epsilon_prv is not None and epsilon_prv < _PRV_RDP_MIN_RATIO * epsilon_rdp:
        notes.append(
            f"PRV ({epsilon_prv:.4g}) is less than half of RDP ({epsilon_rdp:.4g}); "
            "such a gap usually means a numerical problem, so the RDP value was reported."
        )
        used, epsilon = "rdp", epsilon_rdp

    return EpsilonResult(
        epsilon=float(epsilon),
        delta=delta,
        accountant=used,
        epsilon_prv=epsilon_prv,
        epsilon_rdp=epsilon_rdp,
        note=" ".join(notes),
    )


def _single_accountant_epsilon(accountant: AccountantName, noise_multiplier: float, sample_rate: float,
                               steps: int, delta: float) -> float:
    history = [(noise_multiplier, sample_rate, steps)]
    if accountant == "prv":
        return _prv_epsilon(history, delta)
    return _rdp_epsilon(history, delta)


def _bisect_noise(epsilon_at, target_epsilon: float, low: float, high: float, rtol: float) -> tuple[float, float]:
    """Shrink ``[low, high]`` around the smallest noise multiplier whose epsilon is <= target.

    Requires ``epsilon_at(high) <= target_epsilon < epsilon_at(low)``; returns ``high`` and its
    epsilon once that epsilon is within ``rtol * target`` of the target.
    """
    epsilon_high = epsilon_at(high)
    while target_epsilon - epsilon_high > rtol * target_epsilon and high - low > 1e-4 * high:
        middle = 0.5 * (low + high)
        epsilon_middle = epsilon_at(middle)
        if epsilon_middle <= target_epsilon:
            high, epsilon_high = middle, epsilon_middle
        else:
            low = middle
    return high, epsilon_high


def _rdp_noise_for_target(target_epsilon: float, delta: float, sample_rate: float, steps: int,
                          max_noise_multiplier: float, rtol: float) -> float | None:
    """Return the RDP noise multiplier for the target, or None when the maximum does not reach it."""

    def epsilon_at(noise_multiplier: float) -> float:
        return _rdp_epsilon([(noise_multiplier, sample_rate, steps)], delta)

    if epsilon_at(max_noise_multiplier) > target_epsilon:
        return None
    high = min(1.0, max_noise_multiplier)
    while epsilon_at(high) > target_epsilon:
        high = min(2.0 * high, max_noise_multiplier)
    low = high / 2.0 if high > 1.0 else 0.0
    while low > 0.0 and epsilon_at(low) <= target_epsilon:
        low /= 2.0
    noise_multiplier, _ = _bisect_noise(epsilon_at, target_epsilon, low, high, rtol)
    return noise_multiplier


def _prv_noise_for_target(target_epsilon: float, delta: float, sample_rate: float, steps: int,
                          rdp_noise: float | None, max_noise_multiplier: float, rtol: float) -> float | None:
    """Return the PRV noise multiplier for the target, or None when the maximum does not reach it.

    PRV's bound is tighter than RDP's, so the RDP result brackets the PRV one from above;
    starting there saves most of the slow PRV evaluations.

    Raises:
        _PRVFailure: PRV failed numerically at a point the search needed.
    """

    def epsilon_at(noise_multiplier: float) -> float:
        return _prv_epsilon([(noise_multiplier, sample_rate, steps)], delta)

    high = rdp_noise if rdp_noise is not None else max_noise_multiplier
    if epsilon_at(high) > target_epsilon:
        if rdp_noise is None:
            return None
        # PRV above RDP here: search upwards from the RDP result.
        while epsilon_at(high) > target_epsilon:
            if high >= max_noise_multiplier:
                return None
            high = min(2.0 * high, max_noise_multiplier)
    low = 0.5 * high
    while epsilon_at(low) <= target_epsilon:
        high, low = low, 0.5 * low
    noise_multiplier, _ = _bisect_noise(epsilon_at, target_epsilon, low, high, rtol)
    return noise_multiplier


def noise_for_target(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = "prv",
    *,
    max_noise_multiplier: float = 1e4,
    rtol: float = 0.01,
) -> float:
    """Find the smallest noise multiplier whose epsilon after ``steps`` is at most the target.

    A bisection over the noise multiplier like Opacus' ``get_noise_multiplier``, with
    three differences: the search stops at ``max_noise_multiplier`` with a readable error
    instead of raising ``ValueError`` at 1e6; a numerical failure of PRV falls back to the
    RDP result (logged as a warning) instead of raising ``RuntimeError``; and the result
    is re-checked with :func:`compute_epsilon`, the function that reports epsilon.

    Args:
        target_epsilon: The epsilon to spend, > 0.
        delta: The delta of the guarantee.
        sample_rate: Poisson sampling rate of patients per step, in (0, 1).
        steps: Number of DP steps, >= 1.
        accountant: ``"prv"`` (default) or ``"rdp"``.
        max_noise_multiplier: Largest noise multiplier worth considering; the target is
            reported as unreachable when even this one spends too much.
        rtol: Accepted gap between the epsilon reached and the target, relative to the target.

    Returns:
        The noise multiplier; its epsilon lies in ``[target * (1 - rtol), target]``
        unless the search interval shrank to 1e-4 of its value first.

    Raises:
        TargetUnreachableError: No noise multiplier up to ``max_noise_multiplier``
            reaches the target.
        PrivacyError: An argument is invalid.
    """
    delta = _validate_delta(delta)
    requested = _validate_accountant(accountant)
    if not math.isfinite(target_epsilon) or target_epsilon <= 0:
        raise PrivacyError(f"Target epsilon {target_epsilon} is invalid; it must be a finite number > 0.")
    if not 0.0 < sample_rate < 1.0:
        raise PrivacyError(
            f"Sample rate {sample_rate} is invalid; it must be strictly between 0 and 1 "
            "(batch size smaller than the number of patients)."
        )
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise PrivacyError(f"Step count {steps!r} is invalid; it must be a whole number >= 1.")
    if not max_noise_multiplier > 0:
        raise PrivacyError(f"Maximum noise multiplier {max_noise_multiplier} is invalid; it must be > 0.")
    steps = int(steps)

    rdp_noise = _rdp_noise_for_target(target_epsilon, delta, sample_rate, steps, max_noise_multiplier, rtol)
    noise_multiplier = rdp_noise
    used = "rdp"
    if requested == "prv":
        try:
            noise_multiplier = _prv_noise_for_target(
                target_epsilon, delta, sample_rate, steps, rdp_noise, max_noise_multiplier, rtol
            )
            used = "prv"
        except _PRVFailure as failure:
            logger.warning(
                "PRV accountant failed numerically while searching the noise multiplier (%s); using the RDP result",
                failure,
            )

    if noise_multiplier is None:
        epsilon_max = compute_epsilon([(max_noise_multiplier, sample_rate, steps)], delta, accountant=requested)
        raise TargetUnreachableError(
            f"Target epsilon {target_epsilon:g} at delta {delta:g} cannot be reached with {steps} steps "
            f"at sample rate {sample_rate:.4g}: even noise multiplier {max_noise_multiplier:g} spends "
            f"epsilon {epsilon_max.epsilon:.4g} ({epsilon_max.accountant.upper()} accountant). Raise the target "
            "epsilon, train fewer steps, or lower the sample rate (more patients or a smaller batch).",
            max_noise_multiplier=max_noise_multiplier,
            epsilon_at_max=epsilon_max.epsilon,
        )

    check = compute_epsilon([(noise_multiplier, sample_rate, steps)], delta, accountant=used)
    while check.epsilon > target_epsilon and noise_multiplier < max_noise_multiplier:
        # The reporting path disagreed with the search (for example PRV failed at this
        # point and RDP is above the target): add noise until the report is within target.
        noise_multiplier = min(noise_multiplier * 1.02, max_noise_multiplier)
        check = compute_epsilon([(noise_multiplier, sample_rate, steps)], delta, accountant=used)
    if check.epsilon > target_epsilon:
        raise PrivacyError(
            f"Target epsilon {target_epsilon:g} could not be confirmed: the accountants report "
            f"{check.epsilon:.4g} at noise multiplier {noise_multiplier:.4g}. {check.note}"
        )
    logger.info(
        "Noise multiplier %.4f gives epsilon %.4f (target %.4g, %s accountant) after %d steps at sample rate %.4g",
        noise_multiplier, check.epsilon, target_epsilon, check.accountant, steps, sample_rate,
    )
    return float(noise_multiplier)
