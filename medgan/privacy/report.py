"""The ``privacy`` section of report.json, recomputed from the run's recorded history.

The section's keys are fixed by the report schema: private, epsilon, delta, accountant,
epsilon_prv, epsilon_rdp, noise_multiplier, sample_rate, steps, max_grad_norm, unit,
n_patients, noise_to_signal, cohort_key, cohort_epsilon_total, warnings. It adds
``history`` (the full list of ``[noise_multiplier, sample_rate, steps]``) so anyone can
recompute epsilon from the report alone.

JSON has no infinity, so an infinite epsilon (a non-private run, or a noise multiplier
of 0) is written as ``null``, always with a warning that gives the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from medgan.errors import PrivacyError
from medgan.privacy.accounting import compute_epsilon, total_steps, validate_history
from medgan.privacy.preflight import NOT_PRIVATE_WARNING, noise_to_signal_warnings

__all__ = ["privacy_section"]


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def privacy_section(
    *,
    private: bool,
    history: Sequence[Sequence[float]],
    delta: float | None,
    n_patients: int,
    max_grad_norm: float | None,
    accountant: str = "prv",
    cohort_key: str | None = None,
    cohort_epsilon_total: float | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Build the report's ``privacy`` section from the run's history.

    Epsilon is recomputed here with :func:`~medgan.privacy.accounting.compute_epsilon`,
    never taken from a target or from the training loop, so the report matches what a
    fresh accountant computes from the recorded steps.

    Args:
        private: Whether the run trained with DP. False gives a section with null
            epsilon and a loud warning, whatever the history contains.
        history: ``[(noise_multiplier, sample_rate, steps), ...]`` of the whole run,
            resumed parts included.
        delta: The run's delta (None only for a non-private run).
        n_patients: Patients in the training set, the unit of privacy.
        max_grad_norm: Per-patient clipping norm C (None for a non-private run).
        accountant: The accountant to report (``"prv"`` or ``"rdp"``).
        cohort_key: The ledger key of the cohort, when the run was recorded.
        cohort_epsilon_total: Epsilon summed over all runs on the cohort, this one included.
        warnings: Warnings from planning and training to carry into the report.

    Returns:
        A JSON-ready dict.

    Raises:
        PrivacyError: A private run without a delta, or an invalid history.
    """
    checked = validate_history(history)
    notes = list(warnings)
    last_noise, last_rate = (checked[-1][0], checked[-1][1]) if checked else (None, None)
    expected_batch = None if last_rate is None else last_rate * n_patients
    noise_to_signal = None
    if last_noise is not None and expected_batch:
        noise_to_signal = last_noise / expected_batch

    section: dict[str, Any] = {
        "private": bool(private),
        "epsilon": None,
        "delta": None if delta is None else float(delta),
        "accountant": None,
        "epsilon_prv": None,
        "epsilon_rdp": None,
        "noise_multiplier": last_noise,
        "sample_rate": last_rate,
        "steps": total_steps(checked),
        "max_grad_norm": None if max_grad_norm is None else float(max_grad_norm),
        "unit": "patient",
        "n_patients": int(n_patients),
        "noise_to_signal": noise_to_signal,
        "cohort_key": cohort_key,
        "cohort_epsilon_total": _finite_or_none(cohort_epsilon_total),
        "history": [[sigma, rate, steps] for sigma, rate, steps in checked],
        "warnings": notes,
    }

    if not private:
        if NOT_PRIVATE_WARNING not in notes:
            notes.insert(0, NOT_PRIVATE_WARNING)
        return section

    if delta is None:
        raise PrivacyError("A private run's report needs its delta; none was given.")
    if len({(sigma, rate) for sigma, rate, _ in checked}) > 1:
        notes.append(
            "The noise multiplier or sample rate changed during the run; noise_multiplier and sample_rate "
            "show the last values and history lists them all."
        )
    result = compute_epsilon(checked, delta, accountant)
    section["epsilon"] = _finite_or_none(result.epsilon)
    section["accountant"] = result.accountant
    section["epsilon_prv"] = _finite_or_none(result.epsilon_prv)
    section["epsilon_rdp"] = _finite_or_none(result.epsilon_rdp)
    if result.note and result.note not in notes:
        notes.append(result.note)
    if not result.is_finite:
        notes.insert(0, "NO PRIVACY GUARANTEE: epsilon is infinite (null in this report).")
    if noise_to_signal is not None:
        for message in noise_to_signal_warnings(noise_to_signal):
            if message not in notes:
                notes.append(message)
    if cohort_epsilon_total is not None and not math.isfinite(cohort_epsilon_total):
        notes.append("The cohort's total epsilon is infinite (null): a run without a guarantee was recorded on it.")
    return section
