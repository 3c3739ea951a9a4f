from __future__ import annotations

import subprocess
import sys
import sqlite3
from pathlib import Path

import pytest

from medgan.errors import ReviewError
from medgan.review.audit import GENESIS_HASH, AuditLog

HASH_A = "a" * 64


def _append(log: AuditLog, reviewer: str = "ana", decision: str = "approve") -> None:
    log.append(reviewer=reviewer, role="reviewer", scan_file="syn-0000.nii.gz", scan_sha256=HASH_A, evaluation_id="e1", decision=decision, reason="looks anatomical")


def test_append_chains_rows(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "review" / "audit.sqlite")
    _append(log)
    _append(log, decision="reject")
    first, second = log.rows()
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.row_hash
    assert log.verify() == []


def test_update_rejected_by_trigger(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    _append(log)
    with sqlite3.connect(log.path) as connection, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("UPDATE decisions SET decision = 'reject'")


def test_delete_rejected_by_trigger(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    _append(log)
    with sqlite3.connect(log.path) as connection, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("DELETE FROM decisions")


def test_journal_mode_wal(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    _append(log)
    with sqlite3.connect(log.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _tamper(path: Path, sql: str) -> None:
    connection = sqlite3.connect(path)
    connection.execute("DROP TRIGGER decisions_no_update")
    connection.execute("DROP TRIGGER decisions_no_delete")
    connection.execute(sql)
    connection.commit()
    connection.close()


def test_verify_edited_row(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    _append(log, decision="reject")
    _append(log, reviewer="ben")
    _tamper(log.path, "UPDATE decisions SET decision = 'approve' WHERE seq = 1")
    problems = log.verify()
    assert any("row 1: content does not match" in problem for problem in problems)
    assert any("trigger decisions_no_update is missing" in problem for problem in problems)


def test_verify_deleted_middle_row(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    for reviewer in ("ana", "ben", "cy"):
        _append(log, reviewer=reviewer)
    _tamper(log.path, "DELETE FROM decisions WHERE seq = 2")
    problems = log.verify()
    assert any("row 3: previous-row hash does not match" in problem for problem in problems)


def test_verify_deleted_last_row(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    _append(log)
    _append(log, reviewer="ben")
    _tamper(log.path, "DELETE FROM decisions WHERE seq = 2")
    assert any("rows 2..2 were written and are missing" in problem for problem in log.verify())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reason", "  ", "reason"),
        ("decision", "maybe", "decision 'maybe' is invalid"),
        ("role", "admin", "role 'admin' is invalid"),
        ("scan_sha256", "abc", "not 64 lowercase hex"),
    ],
    ids=["empty-reason", "bad-decision", "bad-role", "bad-hash"],
)
def test_append_invalid_field(tmp_path: Path, field: str, value: str, message: str) -> None:
    arguments = dict(reviewer="ana", role="reviewer", scan_file="syn-0000.nii.gz", scan_sha256=HASH_A, evaluation_id="e1", decision="approve", reason="ok")
    arguments[field] = value
    with pytest.raises(ReviewError, match=message):
        AuditLog(tmp_path / "audit.sqlite").append(**arguments)


# Each writer is a separate Python process that waits for a start file, then appends.
_WRITER = """
import sys, time
from pathlib import Path
from medgan.review.audit import AuditLog
path, reviewer, count, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
while not start.exists():
    time.sleep(0.01)
log = AuditLog(path)
for index in range(count):
    log.append(reviewer=reviewer, role="reviewer", scan_file=f"syn-{index:04d}.nii.gz", scan_sha256="a" * 64, evaluation_id="e1", decision="approve", reason=f"row {index}")
"""


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    AuditLog(path).append(reviewer="setup", role="reviewer", scan_file="syn-0000.nii.gz", scan_sha256=HASH_A, evaluation_id="e1", decision="reject", reason="first row")
    start = tmp_path / "start"
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name, "40", str(start)]) for name in ("ana", "ben")]
    start.touch()
    exit_codes = [process.wait(timeout=120) for process in writers]
    assert exit_codes == [0, 0]
    rows = AuditLog(path).rows()
    assert len(rows) == 81
    assert sorted((row.reviewer, row.reason) for row in rows if row.reviewer != "setup") == sorted((name, f"row {index}") for name in ("ana", "ben") for index in range(40))
    assert AuditLog(path).verify() == []
