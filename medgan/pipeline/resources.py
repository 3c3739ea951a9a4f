"""Wall time and peak resident memory of pipeline stages.

``resource.getrusage`` only reports the peak of the whole process, which never goes
down, so a background thread samples the resident set size while a stage runs and
keeps that stage's maximum.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["StageMeasurement", "measure_stage", "current_rss_mb"]

_SAMPLE_INTERVAL_S = 0.05


def current_rss_mb() -> float:
    """Return this process's resident set size in MiB (0 where /proc is unavailable)."""
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return 0.0
    return 0.0


@dataclass
class StageMeasurement:
    """Wall time in seconds and peak resident memory in MiB of one stage."""

    wall_s: float = 0.0
    peak_rss_mb: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall_s, 3), "peak_rss_mb": round(self.peak_rss_mb, 1)}


@contextlib.contextmanager
def measure_stage() -> Iterator[StageMeasurement]:
    """Measure the enclosed block; the measurement is filled in when the block exits."""
    measurement = StageMeasurement(peak_rss_mb=current_rss_mb())
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(_SAMPLE_INTERVAL_S):
            measurement.peak_rss_mb = max(measurement.peak_rss_mb, current_rss_mb())

    sampler = threading.Thread(target=sample, name="medgan-rss-sampler", daemon=True)
    start = time.perf_counter()
    sampler.start()
    try:
        yield measurement
    finally:
        stop.set()
        sampler.join()
        measurement.wall_s = time.perf_counter() - start
        measurement.peak_rss_mb = max(measurement.peak_rss_mb, current_rss_mb())
