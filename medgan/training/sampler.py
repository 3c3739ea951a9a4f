"""Patient-level Poisson sampling: the unit of privacy is the patient, not the scan.

Each step includes every patient independently with probability ``q = batch_size /
n_patients`` and takes exactly one of that patient's scans.  Which scan is taken comes
from a uniform draw made for every patient whether sampled or not, so the random stream
does not depend on the data, and several scans of one patient never count as several
individuals.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from medgan.errors import ConfigError

__all__ = ["PatientPoissonSampler"]


class PatientPoissonSampler:
    """Draw one step's scan indices from patients sampled with rate ``sample_rate``.

    Args:
        patient_scans: for each patient, the indices of their scans (at least one).
        sample_rate: inclusion probability q of each patient per step, in (0, 1).
        generator: the random source; its state is part of a seeded checkpoint.
    """

    def __init__(self, patient_scans: Sequence[Sequence[int]], sample_rate: float, generator: torch.Generator) -> None:
        if not patient_scans:
            raise ConfigError("the training split has no patients; check the manifest's split column")
        if any(len(scans) == 0 for scans in patient_scans):
            raise ConfigError("every training patient needs at least one scan")
        if not 0.0 < sample_rate < 1.0:
            raise ConfigError(
                f"patient sample rate {sample_rate:.3g} must be in (0, 1); lower train.batch_size below the "
                f"number of training patients ({len(patient_scans)})"
            )
        self.patient_scans = [list(scans) for scans in patient_scans]
        self.sample_rate = sample_rate
        self.generator = generator
        self._counts = torch.tensor([len(scans) for scans in self.patient_scans], dtype=torch.float64)

    @property
    def n_patients(self) -> int:
        return len(self.patient_scans)

    def sample(self) -> tuple[list[int], list[int]]:
        """Return (patient indices, scan indices) of one step; both may be empty."""
        included = torch.rand(self.n_patients, generator=self.generator, dtype=torch.float64) < self.sample_rate
        choice = torch.rand(self.n_patients, generator=self.generator, dtype=torch.float64)
        picks = torch.clamp((choice * self._counts).floor().long(), max=self._counts.long() - 1)
        patients = torch.nonzero(included).flatten().tolist()
        scans = [self.patient_scans[patient][int(picks[patient])] for patient in patients]
        return patients, scans
