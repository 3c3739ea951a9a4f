"""Write-ahead log of DP steps, so that a crash can over-count privacy but never under-count it.

Training calls :meth:`StepLedger.append` before a step's outputs (weights, samples,
checkpoints) are written; ``append`` returns only after the record is on disk (fsync).
After a crash, :meth:`StepLedger.history` therefore lists every step whose outputs could
exist, plus possibly the one step that was announced but never finished.

Record format: one JSON object per line, ``{"step": int, "noise_multiplier": float,
"sample_rate": float}``, written with a single ``write`` on a file opened in append mode.

Counting rules, each chosen so that a damaged log errs towards more privacy spent:

* Every record counts as one step, including repeated step numbers: a run resumed
  from an older checkpoint repeats the steps after it, and both executions touched data.
* A line that does not parse (a record torn by a crash, possibly followed by records of
  the resumed run) counts as one step with the parameters of the nearest complete record
  before it, or after it when it is the first line. A log with no complete record at all
  is rejected, because its parameters are unknown.
* A forward jump in step numbers (records lost) counts the missing steps with the
  parameters of the record after the gap.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from medgan.errors import PrivacyError

__all__ = ["StepLedger", "StepRecord"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepRecord:
    """One line of the step log; ``complete`` is False for a line that did not parse."""

    step: int | None
    noise_multiplier: float | None
    sample_rate: float | None
    complete: bool


def _parse_line(line: str) -> StepRecord:
    try:
        payload = json.loads(line)
        step = payload["step"]
        noise_multiplier = float(payload["noise_multiplier"])
        sample_rate = float(payload["sample_rate"])
    except (ValueError, KeyError, TypeError):
        return StepRecord(None, None, None, complete=False)
    if (
        isinstance(step, bool) or not isinstance(step, int) or step < 0
        or not math.isfinite(noise_multiplier) or noise_multiplier < 0
        or not 0.0 <= sample_rate <= 1.0
    ):
        return StepRecord(None, None, None, complete=False)
    return StepRecord(step, noise_multiplier, sample_rate, complete=True)


def _step_and_parameters(record: StepRecord) -> tuple[int, tuple[float, float]]:
    """Return a complete record's step number and ``(noise_multiplier, sample_rate)``."""
    if record.step is None or record.noise_multiplier is None or record.sample_rate is None:
        raise ValueError("a torn step record has no step number or parameters")
    return record.step, (record.noise_multiplier, record.sample_rate)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class StepLedger:
    """The write-ahead step log of one training run.

    Only one process may append at a time: the constructor does not lock, but each
    ``append`` takes an exclusive ``flock`` for its write, and a torn final line left
    by a crash is closed with a newline before the next record.

    Args:
        path: The log file, usually in the run's ``private/checkpoints/`` folder.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def append(self, step: int, noise_multiplier: float, sample_rate: float) -> None:
        """Record that DP step ``step`` is about to run, and return once it is on disk.

        Raises:
            PrivacyError: An argument is invalid or the record cannot be written; the
                caller must not run the step then.
        """
        if isinstance(step, bool) or int(step) != step or step < 0:
            raise PrivacyError(f"Step number {step!r} is invalid; it must be a whole number >= 0.")
        noise_multiplier = float(noise_multiplier)
        sample_rate = float(sample_rate)
        if not math.isfinite(noise_multiplier) or noise_multiplier < 0:
            raise PrivacyError(f"Noise multiplier {noise_multiplier} is invalid; it must be a finite number >= 0.")
        if not 0.0 <= sample_rate <= 1.0:
            raise PrivacyError(f"Sample rate {sample_rate} is invalid; it must be in [0, 1].")
        record = json.dumps({"step": int(step), "noise_multiplier": noise_multiplier, "sample_rate": sample_rate})

        created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                prefix = "\n" if self._ends_without_newline() else ""
                os.write(descriptor, (prefix + record + "\n").encode("utf-8"))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            if created:
                _fsync_directory(self.path.parent)
        except OSError as error:
            raise PrivacyError(
                f"Cannot write the DP step log {self.path}: {error}. The step was not run; free disk space "
                "or fix the folder's permissions, then resume."
            ) from error

    def _ends_without_newline(self) -> bool:
        size = self.path.stat().st_size
        if size == 0:
            return False
        with open(self.path, "rb") as stream:
            stream.seek(size - 1)
            return stream.read(1) != b"\n"

    def records(self) -> list[StepRecord]:
        """Return every line of the log as a record, torn lines included (``complete=False``)."""
        if not self.path.exists():
            return []
        with open(self.path, "rb") as stream:
            text = stream.read().decode("utf-8", errors="replace")
        return [_parse_line(line) for line in text.split("\n") if line.strip()]

    def steps(self) -> list[tuple[float, float]]:
        """Return ``(noise_multiplier, sample_rate)`` for every step counted, in order.

        Applies the counting rules of the module docstring.

        Raises:
            PrivacyError: The log has lines but no complete record.
        """
        records = self.records()
        if not records:
            return []
        complete = [record for record in records if record.complete]
        if not complete:
            raise PrivacyError(
                f"The DP step log {self.path} has {len(records)} line(s) but no complete record, so the "
                "noise multiplier and sample rate of its steps are unknown. The run stopped before its first "
                "step finished; start it again in a new run folder."
            )

        counted: list[tuple[float, float]] = []
        parameters: tuple[float, float] | None = None  # of the last complete record
        expected_step: int | None = None  # the step number the next line should carry
        leading_torn = 0  # torn lines before the first complete record
        torn = 0
        for record in records:
            if not record.complete:
                torn += 1
                if parameters is None:
                    leading_torn += 1
                else:
                    counted.append(parameters)
                    expected_step = None if expected_step is None else expected_step + 1
                continue
            step, parameters = _step_and_parameters(record)
            if leading_torn:
                counted.extend([parameters] * leading_torn)
                leading_torn = 0
            if expected_step is not None and step > expected_step:
                missing = step - expected_step
                logger.warning(
                    "DP step log %s skips from step %d to %d; counting the %d missing step(s)",
                    self.path, expected_step - 1, step, missing,
                )
                counted.extend([parameters] * missing)
            counted.append(parameters)
            expected_step = step + 1
        if torn:
            logger.warning("DP step log %s has %d torn line(s); each is counted as a step", self.path, torn)
        return counted

    def history(self) -> list[tuple[float, float, int]]:
        """Return the counted steps as ``[(noise_multiplier, sample_rate, steps), ...]``.

        Consecutive steps with equal parameters are merged, as Opacus' accountants do, so
        the result can be passed to :func:`medgan.privacy.accounting.compute_epsilon`.
        """
        history: list[tuple[float, float, int]] = []
        for noise_multiplier, sample_rate in self.steps():
            if history and history[-1][0] == noise_multiplier and history[-1][1] == sample_rate:
                history[-1] = (noise_multiplier, sample_rate, history[-1][2] + 1)
            else:
                history.append((noise_multiplier, sample_rate, 1))
        return history

    def __len__(self) -> int:
        """Return the number of steps counted."""
        return len(self.steps())
