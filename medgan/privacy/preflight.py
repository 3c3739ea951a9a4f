"""Pre-flight check of a DP training plan, before any patient data is touched.

:func:`plan_privacy` turns the privacy configuration and the cohort's size into the
noise multiplier, sample rate and delta that training uses, and rejects plans that
would make a false or empty promise: delta of at least 1 / n_patients (one patient's
whole record may leak with that probability), sample rates of 1 or more, budgets the
accountant cannot reach, and noise so large that the model cannot learn.

Thresholds on the noise-to-signal ratio. DP-SGD adds Gaussian noise of standard deviation
``noise_multiplier * C`` to the sum of at most ``batch_size`` clipped gradients, each of
norm at most ``C``; after averaging, every coordinate of the update carries noise of
standard deviation ``C * noise_multiplier / batch_size`` while the whole averaged
gradient has norm at most ``C``. The ratio ``noise_multiplier / batch_size`` is therefore
the noise per coordinate in units of the largest possible signal. Published DP-SGD
settings that train well keep it near 0.001-0.004 (Opacus' CIFAR-10 tutorial: batch 512,
noise multiplier about 1.1; De et al. 2022: batch 4096, noise multiplier about 3). These
rules of thumb follow, for models of about a million parameters:

* above :data:`NOISE_TO_SIGNAL_SLOW` (0.01): learning will be slow and noisy;
* above :data:`NOISE_TO_SIGNAL_HOPELESS` (0.1): the noise norm is about 100 times the
  largest gradient, and about 10,000 steps are needed before the accumulated signal
  matches it, far more than a small cohort's budget allows, so learning is hopeless;
* at or above :data:`MAX_NOISE_TO_SIGNAL` (1.0): each coordinate's noise exceeds the
  largest possible gradient norm, so a plan that needs it is rejected.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from medgan.errors import PrivacyError
from medgan.privacy.accounting import EpsilonResult, TargetUnreachableError, compute_epsilon, noise_for_target
from medgan.privacy.config import PrivacyConfig

__all__ = [
    "PrivacyPlan",
    "plan_privacy",
    "assess_plan",
    "default_delta",
    "noise_to_signal_warnings",
    "MIN_PATIENTS_FOR_DP",
    "NOISE_TO_SIGNAL_SLOW",
    "NOISE_TO_SIGNAL_HOPELESS",
    "MAX_NOISE_TO_SIGNAL",
    "MAX_STEPS",
    "MAX_TARGET_EPSILON",
    "NOT_PRIVATE_WARNING",
]

logger = logging.getLogger(__name__)

NOISE_TO_SIGNAL_SLOW = 0.01
NOISE_TO_SIGNAL_HOPELESS = 0.1
MAX_NOISE_TO_SIGNAL = 1.0

# Plans beyond these limits describe no real training, and the accountants' numerics
# (PRV's grid, RDP's search for a near-zero noise multiplier) are not meant for them.
# Ten million steps is centuries of 3D GAN training; an epsilon of 100 bounds an
# attacker's odds only by e^100 (about 10^43), which is no guarantee at all.
MAX_STEPS = 10_000_000
MAX_TARGET_EPSILON = 100.0

# Below this many patients the expected batch is small (at most a few dozen patients at
# useful sample rates), so the noise needed for a single-digit epsilon dwarfs the signal.
MIN_PATIENTS_FOR_DP = 100

NOT_PRIVATE_WARNING = (
    "NOT PRIVATE: this model was trained without differential privacy. Its weights and "
    "samples may reveal training patients and must not leave the site."
)


@dataclass(frozen=True)
class PrivacyPlan:
    """The privacy parameters a training run will use, checked before it starts.

    Attributes:
        private: False for a non-DP comparison run.
        noise_multiplier: Standard deviation of the DP noise in units of the clipping
            norm; 0 for a non-private run.
        sample_rate: Poisson sampling rate of patients, ``batch_size / n_patients``.
        steps: Number of DP steps planned.
        delta: Delta of the guarantee.
        noise_to_signal: ``noise_multiplier / batch_size``; see the module docstring.
        n_patients: Number of patients in the training set (the unit of privacy).
        batch_size: Expected number of patients per step.
        max_grad_norm: Per-patient clipping norm C.
        target_epsilon: The configured target, or None when a noise multiplier was given.
        epsilon: Epsilon after all planned steps, from :func:`compute_epsilon`.
        accountant: The accountant behind ``epsilon.epsilon``.
        warnings: Plain sentences for the user and the report.
    """

    private: bool
    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float
    noise_to_signal: float
    n_patients: int
    batch_size: int
    max_grad_norm: float
    target_epsilon: float | None
    epsilon: EpsilonResult
    accountant: str
    warnings: list[str] = field(default_factory=list)

    @property
    def history(self) -> list[tuple[float, float, int]]:
        """The planned history, in the form :func:`compute_epsilon` takes."""
        return [(self.noise_multiplier, self.sample_rate, self.steps)]


def default_delta(n_patients: int) -> float:
    """Return ``min(1e-5, 1 / (10 * n_patients))``, the delta used when none is configured.

    Delta is the probability that the guarantee fails outright; with ``n`` patients a
    delta near ``1 / n`` would allow one patient's data to be released in full, so the
    default stays an order of magnitude below it.
    """
    return min(1e-5, 1.0 / (10.0 * n_patients))


def noise_to_signal_warnings(noise_to_signal: float) -> list[str]:
    """Return the warning sentences for a noise-to-signal ratio (none when it is low)."""
    if noise_to_signal >= NOISE_TO_SIGNAL_HOPELESS:
        return [
            f"Noise-to-signal ratio {noise_to_signal:.3g} (noise multiplier / batch size) is above "
            f"{NOISE_TO_SIGNAL_HOPELESS:g}: the noise swamps every gradient and learning is hopeless. "
            "Use more patients, a larger batch, or a larger epsilon."
        ]
    if noise_to_signal >= NOISE_TO_SIGNAL_SLOW:
        return [
            f"Noise-to-signal ratio {noise_to_signal:.3g} (noise multiplier / batch size) is above "
            f"{NOISE_TO_SIGNAL_SLOW:g}: expect slow, noisy learning; well-trained DP models keep it "
            "near 0.001-0.004."
        ]
    return []


def _check_sizes(n_patients: int, batch_size: int, steps: int) -> None:
    for name, value in (("n_patients", n_patients), ("batch_size", batch_size), ("steps", steps)):
        if isinstance(value, bool) or int(value) != value:
            raise PrivacyError(f"{name} is {value!r}; it must be a whole number.")
    if n_patients < 2:
        raise PrivacyError(
            f"The training set has {n_patients} patient(s); differential privacy needs at least 2 "
            "(and gives useful models only with hundreds)."
        )
    if batch_size < 1:
        raise PrivacyError(f"Batch size {batch_size} is invalid; it must be >= 1.")
    if steps < 1:
        raise PrivacyError(f"Step count {steps} is invalid; training needs at least 1 step.")
    if steps > MAX_STEPS:
        raise PrivacyError(
            f"Step count {steps:,} is above the maximum of {MAX_STEPS:,} steps a privacy plan may have; "
            "no training runs that long, and the accountants are not validated there. Plan fewer steps (epochs)."
        )


def _check_delta(delta: float, n_patients: int) -> None:
    if not 0.0 < delta < 1.0:
        raise PrivacyError(f"Delta {delta:g} is invalid; it must be strictly between 0 and 1.")
    if delta >= 1.0 / n_patients:
        raise PrivacyError(
            f"Delta {delta:g} is at least 1 / n_patients = {1.0 / n_patients:.3g} for {n_patients} patients: "
            "with that probability of failure the guarantee would allow one patient's data to be "
            f"released in full. Set delta below {1.0 / (10 * n_patients):.3g} or leave it unset "
            f"(default {default_delta(n_patients):.3g})."
        )


def _collect_warnings(n_patients: int, delta: float, noise_to_signal: float, epsilon: EpsilonResult) -> list[str]:
    messages: list[str] = []
    if n_patients < MIN_PATIENTS_FOR_DP:
        messages.append(
            f"Only {n_patients} patients: with fewer than {MIN_PATIENTS_FOR_DP}, the noise needed for a "
            "meaningful epsilon leaves the model little to learn, and a small epsilon may still "
            "single out a patient with a rare label."
        )
    if delta > 1.0 / (10.0 * n_patients):
        messages.append(
            f"Delta {delta:g} is above 1 / (10 * n_patients) = {1.0 / (10 * n_patients):.3g}; "
            "a delta well below 1 / n_patients is the usual requirement."
        )
    messages.extend(noise_to_signal_warnings(noise_to_signal))
    if epsilon.is_finite and epsilon.epsilon > 10.0:
        messages.append(
            f"Epsilon {epsilon.epsilon:.3g} is above 10: the guarantee bounds an attacker's odds only by "
            f"a factor of e^{epsilon.epsilon:.3g}, which protects little."
        )
    if epsilon.note:
        messages.append(epsilon.note)
    return messages


def assess_plan(
    *,
    n_patients: int,
    batch_size: int,
    steps: int,
    delta: float | None = None,
    noise_multiplier: float | None = None,
    target_epsilon: float | None = None,
    accountant: str = "prv",
    max_grad_norm: float = 1.0,
) -> PrivacyPlan:
    """Compute a DP plan and its warnings without applying the training policy limits.

    This is the planning aid behind ``medgan privacy``: it reports epsilon for any noise
    multiplier (including hopeless ones, with a warning) and rejects only inputs that
    have no meaningful result. Exactly one of ``noise_multiplier`` and ``target_epsilon``
    must be given.

    Raises:
        PrivacyError: Sizes, delta or sample rate are invalid, steps exceed :data:`MAX_STEPS`,
            both or neither of the noise multiplier and the target are given, the target
            is above :data:`MAX_TARGET_EPSILON`, or the target cannot be reached
            with a noise-to-signal ratio below :data:`MAX_NOISE_TO_SIGNAL`.
    """
    _check_sizes(n_patients, batch_size, steps)
    n_patients, batch_size, steps = int(n_patients), int(batch_size), int(steps)
    sample_rate = batch_size / n_patients
    if sample_rate >= 1.0:
        raise PrivacyError(
            f"Batch size {batch_size} with {n_patients} patients gives sample rate {sample_rate:.3g} >= 1: "
            "every patient would be in every batch, which Poisson sampling cannot do and which "
            "removes the privacy gained from sampling. Use a batch size below the number of patients."
        )
    delta = default_delta(n_patients) if delta is None else float(delta)
    _check_delta(delta, n_patients)

    if (noise_multiplier is None) == (target_epsilon is None):
        which = "both" if noise_multiplier is not None else "neither"
        raise PrivacyError(
            f"Privacy is enabled but {which} of target_epsilon and noise_multiplier is set; set exactly one "
            "(set target_epsilon: null to train with a fixed noise_multiplier)."
        )

    if target_epsilon is not None and not (math.isfinite(target_epsilon) and 0 < target_epsilon <= MAX_TARGET_EPSILON):
        raise PrivacyError(
            f"Target epsilon {target_epsilon:g} is invalid; it must be a number > 0 and at most {MAX_TARGET_EPSILON:g}. "
            f"Above {MAX_TARGET_EPSILON:g} the guarantee bounds an attacker's odds only by e^{MAX_TARGET_EPSILON:g} "
            "(about 10^43), which protects nothing; for a comparison without privacy set privacy.enabled: false."
        )
    if target_epsilon is not None:
        max_noise = MAX_NOISE_TO_SIGNAL * batch_size
        try:
            noise_multiplier = noise_for_target(
                target_epsilon, delta, sample_rate, steps, accountant, max_noise_multiplier=max_noise
            )
        except TargetUnreachableError as error:
            raise PrivacyError(
                f"Target epsilon {target_epsilon:g} at delta {delta:g} cannot be reached with {n_patients} patients, "
                f"batch size {batch_size} and {steps} steps: even noise multiplier {max_noise:g} spends epsilon "
                f"{error.epsilon_at_max:.4g}, and more noise than that (noise-to-signal >= {MAX_NOISE_TO_SIGNAL:g}) "
                "exceeds the largest possible gradient, so the model would learn nothing. Raise the target "
                "epsilon, train fewer epochs, or use more patients."
            ) from error
    if noise_multiplier is None or not math.isfinite(noise_multiplier) or noise_multiplier < 0:
        raise PrivacyError(f"Noise multiplier {noise_multiplier} is invalid; it must be a finite number >= 0.")

    epsilon = compute_epsilon([(noise_multiplier, sample_rate, steps)], delta, accountant)
    noise_to_signal = noise_multiplier / batch_size
    plan = PrivacyPlan(
        private=True,
        noise_multiplier=float(noise_multiplier),
        sample_rate=sample_rate,
        steps=steps,
        delta=delta,
        noise_to_signal=noise_to_signal,
        n_patients=n_patients,
        batch_size=batch_size,
        max_grad_norm=float(max_grad_norm),
        target_epsilon=None if target_epsilon is None else float(target_epsilon),
        epsilon=epsilon,
        accountant=epsilon.accountant,
        warnings=_collect_warnings(n_patients, delta, noise_to_signal, epsilon),
    )
    logger.info(
        "Privacy plan: noise multiplier %.4g, sample rate %.4g, %d steps, epsilon %.4g at delta %.3g (%s accountant)",
        plan.noise_multiplier, plan.sample_rate, plan.steps, epsilon.epsilon, delta, epsilon.accountant,
    )
    return plan


def _non_private_plan(config: PrivacyConfig, n_patients: int, batch_size: int, steps: int) -> PrivacyPlan:
    delta = default_delta(n_patients) if config.delta is None else config.delta
    infinite = EpsilonResult(
        epsilon=math.inf, delta=delta, accountant="none", epsilon_prv=None, epsilon_rdp=math.inf,
        note="Differential privacy is disabled.",
    )
    logger.warning("Privacy is disabled: this run is NOT differentially private")
    return PrivacyPlan(
        private=False,
        noise_multiplier=0.0,
        sample_rate=batch_size / n_patients,
        steps=steps,
        delta=delta,
        noise_to_signal=0.0,
        n_patients=n_patients,
        batch_size=batch_size,
        max_grad_norm=config.max_grad_norm,
        target_epsilon=None,
        epsilon=infinite,
        accountant="none",
        warnings=[NOT_PRIVATE_WARNING],
    )


def plan_privacy(config: PrivacyConfig, *, n_patients: int, batch_size: int, steps: int) -> PrivacyPlan:
    """Check a training run's privacy settings and return the parameters it must use.

    Applies :func:`assess_plan` and then the training policy: the planned epsilon must
    be finite and at most ``config.max_epsilon``, and the noise-to-signal ratio below
    :data:`MAX_NOISE_TO_SIGNAL`. With ``config.enabled`` False it returns a plan marked
    not private, with infinite epsilon and a loud warning.

    Args:
        config: The privacy section of the pipeline configuration.
        n_patients: Patients in the training set; the unit of privacy is the patient,
            so several scans of one patient count once.
        batch_size: Expected patients per step; the sample rate is ``batch_size / n_patients``.
        steps: DP steps the run will take.

    Raises:
        PrivacyError: With a message naming the value, the rule and the fix, for
            n_patients < 2, sample rate >= 1, delta >= 1 / n_patients, both or neither of
            target_epsilon and noise_multiplier, a zero noise multiplier, a target above
            max_epsilon or out of reach, or noise that leaves nothing to learn.
    """
    _check_sizes(n_patients, batch_size, steps)
    if not config.enabled:
        return _non_private_plan(config, int(n_patients), int(batch_size), int(steps))

    if config.target_epsilon is not None and config.target_epsilon > config.max_epsilon:
        raise PrivacyError(
            f"Target epsilon {config.target_epsilon:g} is above max_epsilon {config.max_epsilon:g}: at that level "
            "the guarantee bounds an attacker's odds of singling out a patient only by a factor of "
            f"e^{config.target_epsilon:g}, which protects little. Choose a target of at most "
            f"{config.max_epsilon:g}, or raise privacy.max_epsilon knowingly for a comparison run."
        )
    if config.noise_multiplier == 0 and config.target_epsilon is None:
        raise PrivacyError(
            "Noise multiplier 0 adds no noise, so epsilon would be infinite while the run claims to be "
            "private. Set privacy.enabled: false for a non-private comparison run, or choose a noise multiplier > 0."
        )

    plan = assess_plan(
        n_patients=n_patients,
        batch_size=batch_size,
        steps=steps,
        delta=config.delta,
        noise_multiplier=config.noise_multiplier,
        target_epsilon=config.target_epsilon,
        accountant=config.accountant,
        max_grad_norm=config.max_grad_norm,
    )
    if plan.noise_to_signal >= MAX_NOISE_TO_SIGNAL:
        raise PrivacyError(
            f"Noise multiplier {plan.noise_multiplier:g} with batch size {plan.batch_size} gives noise-to-signal "
            f"{plan.noise_to_signal:.3g} >= {MAX_NOISE_TO_SIGNAL:g}: the noise exceeds the largest possible "
            "gradient and the model learns nothing. Use a larger batch or a smaller noise multiplier."
        )
    if plan.epsilon.epsilon > config.max_epsilon:
        raise PrivacyError(
            f"Noise multiplier {plan.noise_multiplier:g} spends epsilon {plan.epsilon.epsilon:.4g} over "
            f"{plan.steps} steps, above max_epsilon {config.max_epsilon:g}. Raise the noise multiplier, "
            "train fewer steps, or raise privacy.max_epsilon knowingly for a comparison run."
        )
    return plan
