"""``medgan privacy``: epsilon or noise multiplier for a planned DP training.

A planning aid for researchers before they request data access: given the number of
patients, the batch size and the epochs, it prints epsilon under the PRV and RDP
accountants (or the noise multiplier for a target epsilon) beside the noise-to-signal
ratio that decides whether the model can learn anything.
"""

from __future__ import annotations

import json
import math
from typing import Any

import click

from medgan.errors import PrivacyError

__all__ = ["privacy", "planned_steps"]


def planned_steps(n_patients: int, batch_size: int, epochs: float) -> int:
    """Return the DP steps of ``epochs`` passes: ``ceil(epochs * n_patients / batch_size)``.

    Rounded up, because a plan that counts one step too few would understate epsilon.
    """
    return max(1, math.ceil(epochs * n_patients / batch_size - 1e-9))


def _number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _plan_payload(plan: Any, epochs: float) -> dict[str, Any]:
    return {
        "n_patients": plan.n_patients,
        "batch_size": plan.batch_size,
        "epochs": epochs,
        "sample_rate": plan.sample_rate,
        "steps": plan.steps,
        "delta": plan.delta,
        "noise_multiplier": plan.noise_multiplier,
        "target_epsilon": plan.target_epsilon,
        "noise_to_signal": plan.noise_to_signal,
        "epsilon": _number(plan.epsilon.epsilon),
        "accountant": plan.epsilon.accountant,
        "epsilon_prv": _number(plan.epsilon.epsilon_prv),
        "epsilon_rdp": _number(plan.epsilon.epsilon_rdp),
        "unit": "patient",
        "warnings": list(plan.warnings),
    }


def _format_epsilon(value: float | None) -> str:
    if value is None:
        return "failed"
    if not math.isfinite(value):
        return "infinite (no privacy)"
    return f"{value:.4g}"


def _plan_text(plan: Any, epochs: float) -> str:
    result = plan.epsilon
    rows = [
        ("Patients (unit of privacy)", f"{plan.n_patients}"),
        ("Batch size (expected)", f"{plan.batch_size}"),
        ("Sample rate", f"{plan.sample_rate:.4g}"),
        ("Steps", f"{plan.steps} ({epochs:g} epochs)"),
        ("Delta", f"{plan.delta:.3g}"),
    ]
    if plan.target_epsilon is not None:
        rows.append(("Target epsilon", f"{plan.target_epsilon:g}"))
    rows += [
        ("Noise multiplier", f"{plan.noise_multiplier:.4g}"),
        ("Noise-to-signal", f"{plan.noise_to_signal:.4g} (noise multiplier / batch size)"),
        ("Epsilon (PRV)", _format_epsilon(result.epsilon_prv)),
        ("Epsilon (RDP)", _format_epsilon(result.epsilon_rdp)),
        ("Epsilon", f"{_format_epsilon(result.epsilon)} ({result.accountant.upper()} accountant)"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label.ljust(width)}  {value}" for label, value in rows]
    lines += [f"warning: {message}" for message in plan.warnings]
    return "\n".join(lines)


@click.command("privacy")
@click.option("--n", "n_patients", type=int, required=True, help="Number of patients in the training set.")
@click.option("--batch-size", type=int, required=True, help="Expected patients per step (sample rate = batch size / n).")
@click.option("--epochs", type=float, required=True, help="Passes over the patients; steps = ceil(epochs * n / batch size).")
@click.option("--noise-multiplier", type=float, default=None, help="Noise standard deviation in units of the clipping norm.")
@click.option("--target-epsilon", type=float, default=None, help="Epsilon to reach; prints the noise multiplier needed.")
@click.option("--delta", type=float, default=None, help="Delta of the guarantee [default: min(1e-5, 1 / (10 n))].")
@click.option("--accountant", type=click.Choice(["prv", "rdp"]), default="prv", show_default=True,
              help="Accountant for the reported epsilon; the other is shown as a cross-check.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def privacy(
    n_patients: int,
    batch_size: int,
    epochs: float,
    noise_multiplier: float | None,
    target_epsilon: float | None,
    delta: float | None,
    accountant: str,
    as_json: bool,
) -> None:
    """Compute epsilon, or the noise multiplier for a target epsilon, for a planned DP training.

    Give exactly one of --noise-multiplier and --target-epsilon. Epsilon covers each
    patient with all their scans, under Poisson sampling of patients.
    """
    from medgan.privacy.preflight import MAX_STEPS, MAX_TARGET_EPSILON, assess_plan

    if (noise_multiplier is None) == (target_epsilon is None):
        raise PrivacyError("Give exactly one of --noise-multiplier and --target-epsilon.")
    if not (math.isfinite(epochs) and epochs > 0):
        raise PrivacyError(f"--epochs {epochs:g} is invalid; it must be a number > 0.")
    if batch_size < 1:
        raise PrivacyError(f"--batch-size {batch_size} is invalid; it must be >= 1.")
    if noise_multiplier is not None and not (math.isfinite(noise_multiplier) and noise_multiplier >= 0):
        raise PrivacyError(f"--noise-multiplier {noise_multiplier:g} is invalid; it must be a number >= 0.")

    if target_epsilon is not None and not (math.isfinite(target_epsilon) and 0 < target_epsilon <= MAX_TARGET_EPSILON):
        raise PrivacyError(
            f"--target-epsilon {target_epsilon:g} is invalid; it must be a number > 0 and at most "
            f"{MAX_TARGET_EPSILON:g} (above that the guarantee protects nothing)."
        )
    if n_patients < 2:
        raise PrivacyError(f"--n {n_patients} is invalid; differential privacy needs at least 2 patients.")

    steps = planned_steps(n_patients, batch_size, epochs)
    if steps > MAX_STEPS:
        raise PrivacyError(
            f"--epochs {epochs:g} with --n {n_patients} and --batch-size {batch_size} gives {steps:,} steps, "
            f"above the maximum of {MAX_STEPS:,} a privacy plan may have. Plan fewer epochs."
        )
    plan = assess_plan(
        n_patients=n_patients,
        batch_size=batch_size,
        steps=steps,
        delta=delta,
        noise_multiplier=noise_multiplier,
        target_epsilon=target_epsilon,
        accountant=accountant,
    )
    if as_json:
        click.echo(json.dumps(_plan_payload(plan, epochs), indent=2))
    else:
        click.echo(_plan_text(plan, epochs))
