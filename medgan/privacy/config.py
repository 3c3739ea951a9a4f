"""Configuration of differential privacy and the privacy budget."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from medgan.configbase import Section

__all__ = ["PrivacyConfig"]


class PrivacyConfig(Section):
    """DP-SGD settings for the discriminator; the unit of privacy is the patient."""

    enabled: bool = Field(True, description="Train with DP-SGD. False gives a non-private model, labelled so everywhere.")
    target_epsilon: float | None = Field(8.0, gt=0, description="Epsilon to spend; sets the noise multiplier.")
    noise_multiplier: float | None = Field(None, ge=0, description="Fixed noise multiplier instead of target_epsilon.")
    delta: float | None = Field(None, gt=0, lt=1, description="Delta; default min(1e-5, 1 / (10 * n_patients)).")
    max_grad_norm: float = Field(1.0, gt=0, description="Per-patient gradient clipping norm C.")
    accountant: Literal["prv", "rdp"] = Field("prv", description="Accountant for the reported epsilon; the other cross-checks it.")
    secure_mode: bool = Field(False, description="Draw DP noise from an OS-entropy seed that is never stored (release runs).")
    cohort_budget: float | None = Field(None, gt=0, description="Maximum epsilon summed over all runs on this cohort.")
    max_epsilon: float = Field(
        10.0,
        gt=0,
        description=(
            "Largest epsilon a run may plan to spend. Above 10 the guarantee bounds an attacker's odds "
            "by more than e^10 (about 22,000), which protects little; raise it only for comparisons."
        ),
    )
    ledger_dir: Path | None = Field(None, description="Folder of the per-cohort ledger; default ~/.medgan/ledger.")
