"""Append-only, hash-chained SQLite log of reviewer decisions.

The log lives in ``<run>/review/audit.sqlite``.  Three mechanisms make it hold up in an
audit:

* SQLite triggers abort every ``UPDATE`` and ``DELETE`` on the decisions table, so a
  correction is always a new row and the history stays visible.
* Each row stores the SHA-256 of its own fields plus the hash of the row before it.
  Editing a row with another tool (after dropping the triggers) breaks the chain, and
  :meth:`AuditLog.verify` reports where.
* The database runs in WAL mode and every append is a ``BEGIN IMMEDIATE`` transaction,
  which takes the write lock before the previous hash is read.  Connections wait on a
  busy timeout, so two reviewers deciding at the same moment both get their row in,
  chained one after the other.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from medgan.errors import ReviewError

__all__ = ["AuditLog", "AuditRow", "DECISIONS", "ROLES", "GENESIS_HASH", "row_hash"]

logger = logging.getLogger(__name__)

DECISIONS = ("approve", "reject", "override")
"""``override`` releases a memorization-flagged scan; only a privacy officer may record it."""

ROLES = ("reviewer", "privacy-officer")

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first row."""

BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another reviewer's transaction before giving up."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Fields covered by the row hash, in the order they are serialised.
_HASHED_FIELDS = (
    "seq",
    "time_utc",
    "reviewer",
    "role",
    "identity_source",
    "scan_file",
    "scan_sha256",
    "evaluation_id",
    "decision",
    "reason",
    "prev_hash",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    time_utc        TEXT NOT NULL,
    reviewer        TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('reviewer', 'privacy-officer')),
    identity_source TEXT NOT NULL,
    scan_file       TEXT NOT NULL,
    scan_sha256     TEXT NOT NULL,
    evaluation_id   TEXT NOT NULL,
    decision        TEXT NOT NULL CHECK (decision IN ('approve', 'reject', 'override')),
    reason          TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    row_hash        TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: record a correction as a new row');
END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be deleted');
END;
CREATE INDEX IF NOT EXISTS decisions_by_scan ON decisions (evaluation_id, scan_sha256, seq);
"""

_TRIGGERS = ("decisions_no_update", "decisions_no_delete")


@dataclass(frozen=True)
class AuditRow:
    """One reviewer decision as stored in the log."""

    seq: int
    time_utc: str
    reviewer: str
    role: str
    identity_source: str
    scan_file: str
    scan_sha256: str
    evaluation_id: str
    decision: str
    reason: str
    prev_hash: str
    row_hash: str


def row_hash(fields: dict[str, object]) -> str:
    """Return the SHA-256 of a row's hashed fields as canonical JSON."""
    payload = json.dumps([fields[name] for name in _HASHED_FIELDS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _require_text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ReviewError(f"audit row field {name!r} is empty; every decision needs a {name.replace('_', ' ')}")
    return value.strip()


class AuditLog:
    """The decision log of one run, an SQLite database opened per operation.

    Args:
        path: the database file, normally ``<run>/review/audit.sqlite``.  It and its
            folder are created on the first :meth:`append`; reading a missing log
            returns no rows.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self, create: bool) -> Iterator[sqlite3.Connection]:
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_file():
            raise ReviewError(f"audit log {self.path} not found")
        # isolation_level=None: transactions are explicit, so BEGIN IMMEDIATE is ours.
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        with closing(connection):
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if create:
                mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise ReviewError(f"audit log {self.path}: SQLite did not switch to WAL mode (journal mode is {mode!r}); put the run folder on a local disk")
                connection.executescript(_SCHEMA)
            connection.execute("PRAGMA synchronous = FULL")
            yield connection

    def exists(self) -> bool:
        """Return whether the database file exists."""
        return self.path.is_file()

    def append(
        self,
        *,
        reviewer: str,
        role: str,
        scan_file: str,
        scan_sha256: str,
        evaluation_id: str,
        decision: str,
        reason: str,
        identity_source: str = "local",
    ) -> AuditRow:
        """Append one decision, chained to the current last row, and return it.

        The write lock is taken (``BEGIN IMMEDIATE``) before the last row's hash is read,
        so concurrent writers are serialised and never fork the chain.

        Raises:
            ReviewError: a field is empty or malformed, or the database stays locked
                longer than the busy timeout.
        """
        fields: dict[str, object] = {
            "reviewer": _require_text("reviewer", reviewer),
            "role": role,
            "identity_source": _require_text("identity_source", identity_source),
            "scan_file": _require_text("scan_file", scan_file),
            "scan_sha256": scan_sha256,
            "evaluation_id": _require_text("evaluation_id", evaluation_id),
            "decision": decision,
            "reason": _require_text("reason", reason),
        }
        if role not in ROLES:
            raise ReviewError(f"role {role!r} is invalid; use one of {', '.join(ROLES)}")
        if decision not in DECISIONS:
            raise ReviewError(f"decision {decision!r} is invalid; use one of {', '.join(DECISIONS)}")
        if not isinstance(scan_sha256, str) or not _SHA256.match(scan_sha256):
            raise ReviewError(f"scan SHA-256 {scan_sha256!r} is not 64 lowercase hex digits; hash the file with medgan.fileio.sha256_file")

        try:
            with self._connect(create=True) as connection:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    last = connection.execute("SELECT seq, row_hash FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
                    fields["seq"] = (last[0] + 1) if last else 1
                    fields["prev_hash"] = last[1] if last else GENESIS_HASH
                    fields["time_utc"] = _utc_now()
                    fields["row_hash"] = row_hash(fields)
                    columns = (*_HASHED_FIELDS, "row_hash")
                    connection.execute(
                        f"INSERT INTO decisions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                        [fields[name] for name in columns],
                    )
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
        except sqlite3.OperationalError as error:
            raise ReviewError(f"audit log {self.path}: recording the decision failed ({error}); retry, and check that no other program keeps the file locked") from error
        row = AuditRow(**fields)  # type: ignore[arg-type]
        logger.info("recorded %s of %s (evaluation %s) by %s, row %d", decision, row.scan_file, row.evaluation_id, row.reviewer, row.seq)
        return row

    def rows(self) -> list[AuditRow]:
        """Return every row in chain order; an empty list when the log does not exist."""
        if not self.exists():
            return []
        with self._connect(create=False) as connection:
            cursor = connection.execute(f"SELECT {', '.join(_HASHED_FIELDS)}, row_hash FROM decisions ORDER BY seq")
            return [AuditRow(*record) for record in cursor.fetchall()]

    def verify(self) -> list[str]:
        """Check the chain, the triggers and the row counter; return the problems found.

        An empty list means the log is intact.  The checks find:

        * an edited row, because its hash no longer matches its content;
        * a row inserted or removed in the middle, because the next row's ``prev_hash``
          no longer matches;
        * rows removed at the end, because SQLite's AUTOINCREMENT counter is ahead of
          the last row;
        * dropped triggers.

        NOTE: whoever can rewrite the whole file can also rebuild a consistent chain and
        counter; anchor the last row hash elsewhere (the dataset card records it) to
        detect that.
        """
        if not self.exists():
            return [f"audit log {self.path} not found"]
        problems: list[str] = []
        try:
            with self._connect(create=False) as connection:
                tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if "decisions" not in tables:
                    return [f"audit log {self.path} has no decisions table"]
                triggers = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
                for trigger in _TRIGGERS:
                    if trigger not in triggers:
                        problems.append(f"trigger {trigger} is missing, so rows could have been edited or deleted")
                records = connection.execute(f"SELECT {', '.join(_HASHED_FIELDS)}, row_hash FROM decisions ORDER BY seq").fetchall()
                counter = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'decisions'").fetchone()
        except sqlite3.DatabaseError as error:
            return [f"audit log {self.path} is not a readable SQLite database ({error})"]

        previous_hash = GENESIS_HASH
        expected_seq = 1
        for record in records:
            row = AuditRow(*record)
            if row.seq != expected_seq:
                problems.append(f"row {row.seq}: expected row number {expected_seq}, so rows are missing before it")
            if row.prev_hash != previous_hash:
                problems.append(f"row {row.seq}: previous-row hash does not match row {row.seq - 1}, so the chain is broken")
            fields = asdict(row)
            if row_hash(fields) != row.row_hash:
                problems.append(f"row {row.seq}: content does not match its hash, so the row was edited")
            previous_hash = row.row_hash
            expected_seq = row.seq + 1
        last_seq = records[-1][0] if records else 0
        if counter is not None and counter[0] > last_seq:
            problems.append(f"rows {last_seq + 1}..{counter[0]} were written and are missing, so rows were deleted at the end")
        return problems

    def last_hash(self) -> str:
        """Return the hash of the last row, or the genesis hash of an empty log."""
        rows = self.rows()
        return rows[-1].row_hash if rows else GENESIS_HASH
