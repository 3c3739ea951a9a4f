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


class DistributedPatientSampler:
    """Patient-level Poisson sampling split over the processes of a multi-process run.

    Uses Opacus' ``DistributedUniformWithReplacementSampler`` scheme: the patient indices
    are shuffled with a seed shared by all processes, each process takes every
    ``world_size``-th one, and includes each of its patients with probability ``q``.
    Across processes every patient is therefore sampled once with rate ``q`` per step, as
    the accountant assumes, and no patient is repeated (torch's ``DistributedSampler``
    would pad the shards with repeated rows).  Opacus' iterator skips a step whose local
    batch is empty, which would leave the processes out of step with each other, so this
    subclass yields every step.

    Args:
        patient_scans: for each patient, the indices of their scans (identical on every process).
        sample_rate: inclusion probability q of each patient per step.
        generator: this process's random source (seeded differently on each process).
        steps: steps the run takes.
        shuffle_seed: seed of the partition, identical on every process.
    """

    def __init__(
        self, patient_scans: Sequence[Sequence[int]], sample_rate: float, generator: torch.Generator, *, steps: int, shuffle_seed: int
    ) -> None:
        from opacus.utils.uniform_sampler import DistributedUniformWithReplacementSampler

        class _EveryStepSampler(DistributedUniformWithReplacementSampler):
            def __iter__(self):  # noqa: D105 - same as Opacus' but yields empty batches too
                order = torch.randperm(self.total_size, generator=torch.Generator().manual_seed(self.shuffle_seed + self.epoch))
                local = order[self.rank : self.total_size : self.num_replicas]
                for _ in range(self.num_batches):
                    mask = torch.rand(self.num_samples, generator=self.generator) < self.sample_rate
                    yield local[mask]

        self.local = PatientPoissonSampler(patient_scans, sample_rate, generator)
        self.opacus_sampler = _EveryStepSampler(
            total_size=len(patient_scans), sample_rate=sample_rate, steps=steps, generator=generator, shuffle_seed=shuffle_seed
        )
        self._batches = iter(self.opacus_sampler)

    def sample(self) -> tuple[list[int], list[int]]:
        """Return (patient indices, scan indices) of this process's share of one step."""
        patients = next(self._batches).tolist()
        local = self.local
        choice = torch.rand(local.n_patients, generator=local.generator, dtype=torch.float64)
        picks = torch.clamp((choice * local._counts).floor().long(), max=local._counts.long() - 1)
        return patients, [local.patient_scans[patient][int(picks[patient])] for patient in patients]
