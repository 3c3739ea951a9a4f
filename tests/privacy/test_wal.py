"""Write-ahead step log: history, torn records and gaps never under-count."""

from __future__ import annotations

import pytest

from medgan.errors import PrivacyError
from medgan.privacy.wal import StepLedger


def filled(tmp_path, count: int, noise: float = 1.0, rate: float = 0.05) -> StepLedger:
    ledger = StepLedger(tmp_path / "steps.jsonl")
    for step in range(count):
        ledger.append(step, noise, rate)
    return ledger


def test_history_compresses_equal_steps(tmp_path):
    assert filled(tmp_path, 5).history() == [(1.0, 0.05, 5)]


def test_history_keeps_segments(tmp_path):
    ledger = filled(tmp_path, 3)
    ledger.append(3, 2.0, 0.05)
    ledger.append(4, 1.0, 0.05)
    assert ledger.history() == [(1.0, 0.05, 3), (2.0, 0.05, 1), (1.0, 0.05, 1)]


def test_missing_file_is_empty(tmp_path):
    assert StepLedger(tmp_path / "absent.jsonl").history() == []


def test_torn_last_line_counted(tmp_path):
    ledger = filled(tmp_path, 4)
    with open(ledger.path, "a", encoding="utf-8") as stream:
        stream.write('{"step": 4, "noise_mul')
    assert ledger.history() == [(1.0, 0.05, 5)]


def test_append_after_torn_line(tmp_path):
    # The resumed run re-runs step 4 after the crash: both executions count.
    ledger = filled(tmp_path, 4)
    with open(ledger.path, "a", encoding="utf-8") as stream:
        stream.write('{"step": 4, "noise_mul')
    ledger.append(4, 1.0, 0.05)
    assert ledger.history() == [(1.0, 0.05, 6)]


def test_torn_line_stays_separate(tmp_path):
    ledger = filled(tmp_path, 2)
    with open(ledger.path, "a", encoding="utf-8") as stream:
        stream.write('{"step": 2')
    ledger.append(2, 1.0, 0.05)
    complete = [record for record in ledger.records() if record.complete]
    assert len(complete) == 3


def test_torn_first_line_uses_next_record(tmp_path):
    path = tmp_path / "steps.jsonl"
    path.write_text('{"step": 0, "noise_multiplier": 2\n', encoding="utf-8")
    ledger = StepLedger(path)
    ledger.append(0, 2.0, 0.1)
    assert ledger.history() == [(2.0, 0.1, 2)]


def test_only_torn_line_rejected(tmp_path):
    path = tmp_path / "steps.jsonl"
    path.write_text('{"step": 0, "noise_mu', encoding="utf-8")
    with pytest.raises(PrivacyError, match="no complete record"):
        StepLedger(path).history()


def test_gap_counts_missing_steps(tmp_path):
    ledger = filled(tmp_path, 3)
    ledger.append(7, 1.0, 0.05)
    assert ledger.history() == [(1.0, 0.05, 8)]


def test_resume_from_older_checkpoint_counts_repeats(tmp_path):
    ledger = filled(tmp_path, 6)
    for step in range(3, 6):
        ledger.append(step, 1.0, 0.05)
    assert len(ledger) == 9


def test_truncated_record_line_counted(tmp_path):
    # A line that lost its tail (the key is there but the value is cut) still counts.
    ledger = filled(tmp_path, 2)
    with open(ledger.path, "a", encoding="utf-8") as stream:
        stream.write('{"step": 2, "noise_multiplier": 1.0, "sample_rate": \n')
    assert ledger.history() == [(1.0, 0.05, 3)]


@pytest.mark.parametrize(
    ("step", "noise", "rate"),
    [(-1, 1.0, 0.05), (1.5, 1.0, 0.05), (0, -1.0, 0.05), (0, 1.0, 1.5)],
    ids=["negative-step", "fractional-step", "negative-noise", "rate-above-1"],
)
def test_append_rejects_invalid(tmp_path, step, noise, rate):
    with pytest.raises(PrivacyError):
        StepLedger(tmp_path / "steps.jsonl").append(step, noise, rate)


def test_append_failure_is_privacy_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(PrivacyError, match="step was not run"):
        StepLedger(blocker / "steps.jsonl").append(0, 1.0, 0.05)


def _train_forever(log_path: str, outputs: str) -> None:
    """Append a step, then write the step's output, until killed."""
    from pathlib import Path

    ledger = StepLedger(log_path)
    step = 0
    while True:
        ledger.append(step, 1.0, 0.05)
        Path(outputs, f"step-{step:06d}").write_bytes(b"x")
        step += 1


def test_killed_run_never_undercounts(tmp_path):
    import multiprocessing
    import os
    import signal
    import time

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_train_forever, args=(str(tmp_path / "steps.jsonl"), str(outputs)))
    process.start()
    deadline = time.monotonic() + 60
    while len(os.listdir(outputs)) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=30)
    written = len(os.listdir(outputs))
    counted = len(StepLedger(tmp_path / "steps.jsonl"))
    assert written >= 20
    assert counted >= written
    assert counted <= written + 1
