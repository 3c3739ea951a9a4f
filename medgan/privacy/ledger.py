"""Per-cohort privacy ledger: the epsilon spent by every run on the same patients.

Each run's epsilon covers that run only. Training several models on one cohort spends
privacy each time, so the ledger adds the runs up and refuses a new run that would
exceed the cohort's budget.

Composition rule: basic (sequential) composition. Runs ``i`` that are each
``(epsilon_i, delta_i)``-DP on the same patients are jointly
``(sum epsilon_i, sum delta_i)``-DP, whatever each run's accountant was. Tighter
composition would need every run's full history under one accountant; the sum is never
optimistic, so the ledger uses it.

Storage: one SQLite database per ledger folder. ``check_budget`` with a ``run_id`` and
``record_run`` each run in one ``BEGIN IMMEDIATE`` transaction, so two runs starting at
the same time cannot both pass the check on the same remaining budget, and a crash
leaves either the old or the new row, never half of one. A reservation made at the
check counts at its planned epsilon until ``record_run`` replaces it with the run's
recomputed epsilon, so a run that crashes before recording is still charged.

Overlapping cohorts: a cohort that differs by one scan has another key, so the sum per
key alone would let a new run on nearly the same patients start from zero. Runs may
therefore also list their members (the hashes of their scan files). A member's spend is
the sum over every run that included it, whatever the cohort key, because a run whose
data did not include a patient reveals nothing about that patient. A run with members
is checked against the largest spend of any of its members as well as its cohort's sum.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import math
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from medgan.errors import PrivacyError

__all__ = ["CohortLedger", "LedgerEntry", "cohort_key", "DEFAULT_LEDGER_DIR"]

logger = logging.getLogger(__name__)

DEFAULT_LEDGER_DIR = Path("~/.medgan/ledger")
_DATABASE_NAME = "ledger.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    cohort_key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    epsilon REAL NOT NULL,
    delta REAL NOT NULL,
    accountant TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('reserved', 'recorded')),
    updated_utc TEXT NOT NULL,
    PRIMARY KEY (cohort_key, run_id)
);
CREATE TABLE IF NOT EXISTS members (
    cohort_key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (cohort_key, run_id, member)
);
CREATE INDEX IF NOT EXISTS members_by_member ON members (member);
"""
_HEX_DIGITS = frozenset("0123456789abcdef")


def cohort_key(manifest_sha256: str, file_hashes: Sequence[str]) -> str:
    """Return the ledger key of a cohort: a SHA-256 over its manifest and its files.

    The key changes when the manifest or any scan file changes, and does not depend on
    the order of ``file_hashes``. It contains no identifier, only hashes of hashes.

    Args:
        manifest_sha256: Hex SHA-256 of the manifest file's bytes.
        file_hashes: Hex SHA-256 of every scan file the manifest lists.

    Raises:
        PrivacyError: A hash is not 64 lowercase hex digits, or ``file_hashes`` is empty.
    """
    hashes = [manifest_sha256, *file_hashes]
    for value in hashes:
        if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX_DIGITS:
            raise PrivacyError(
                f"Cohort hash {value!r} is invalid; expected a SHA-256 as 64 lowercase hex digits."
            )
    if not file_hashes:
        raise PrivacyError("A cohort key needs the hashes of the cohort's files; none were given.")
    digest = hashlib.sha256()
    digest.update(b"medgan-cohort-key-v1\n")
    digest.update(manifest_sha256.encode("ascii") + b"\n")
    for value in sorted(file_hashes):
        digest.update(value.encode("ascii") + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    """One run's charge on a cohort.

    Attributes:
        cohort_key: The cohort charged.
        run_id: The run.
        epsilon: Its epsilon; ``math.inf`` for a run without a DP guarantee.
        delta: Its delta.
        accountant: Accountant behind ``epsilon`` (``"prv"``, ``"rdp"`` or ``"planned"``).
        status: ``"reserved"`` (planned epsilon, run not finished) or ``"recorded"``.
        updated_utc: ISO 8601 time of the last change.
    """

    cohort_key: str
    run_id: str
    epsilon: float
    delta: float
    accountant: str
    status: str
    updated_utc: str


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _check_epsilon(value: float, name: str) -> float:
    value = float(value)
    if math.isnan(value) or value < 0:
        raise PrivacyError(f"{name} {value} is invalid; it must be >= 0 (inf for a run without a guarantee).")
    return value


class CohortLedger:
    """The privacy ledger in one folder, shared by all runs on this site.

    Args:
        directory: Folder of the ledger database; created (mode 0700) when missing.
        timeout_s: How long a call waits for another process's transaction.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, timeout_s: float = 60.0) -> None:
        folder = Path(directory if directory is not None else DEFAULT_LEDGER_DIR).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:
            raise PrivacyError(f"Cannot create the privacy ledger folder {folder}: {error}. Set privacy.ledger_dir "
                               "to a writable folder.") from error
        self.path = folder / _DATABASE_NAME
        self._timeout_s = timeout_s
        with self._transaction() as connection:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection inside ``BEGIN IMMEDIATE``; commit on success, roll back on error."""
        try:
            connection = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None)
        except sqlite3.Error as error:
            raise PrivacyError(f"Cannot open the privacy ledger {self.path}: {error}.") from error
        try:
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise PrivacyError(f"The privacy ledger {self.path} could not be updated: {error}.") from error
        finally:
            connection.close()

    @staticmethod
    def _sum(connection: sqlite3.Connection, key: str, exclude_run: str | None = None) -> tuple[float, float]:
        rows = connection.execute(
            "SELECT epsilon, delta FROM runs WHERE cohort_key = ? AND run_id IS NOT ?", (key, exclude_run)
        ).fetchall()
        # Summed in Python so that an infinite epsilon stays infinite.
        return math.fsum(row[0] for row in rows), math.fsum(row[1] for row in rows)

    @staticmethod
    def _member_max(connection: sqlite3.Connection, members: Sequence[str], exclude_run: str | None) -> float:
        """Return the largest epsilon spent on any one of ``members`` by runs other than ``exclude_run``."""
        if not members:
            return 0.0
        connection.execute("CREATE TEMP TABLE IF NOT EXISTS requested (member TEXT PRIMARY KEY)")
        connection.execute("DELETE FROM requested")
        connection.executemany("INSERT OR IGNORE INTO requested VALUES (?)", [(member,) for member in members])
        rows = connection.execute(
            "SELECT requested.member, runs.epsilon FROM requested "
            "JOIN members ON members.member = requested.member "
            "JOIN runs ON runs.cohort_key = members.cohort_key AND runs.run_id = members.run_id "
            "WHERE runs.run_id IS NOT ?",
            (exclude_run,),
        ).fetchall()
        connection.execute("DELETE FROM requested")
        totals: dict[str, list[float]] = {}
        for member, epsilon in rows:
            totals.setdefault(member, []).append(epsilon)
        # Summed in Python so that an infinite epsilon stays infinite.
        return max((math.fsum(values) for values in totals.values()), default=0.0)

    @staticmethod
    def _store_members(connection: sqlite3.Connection, key: str, run_id: str, members: Sequence[str]) -> None:
        connection.execute("DELETE FROM members WHERE cohort_key = ? AND run_id = ?", (key, run_id))
        connection.executemany(
            "INSERT OR IGNORE INTO members VALUES (?, ?, ?)", [(key, run_id, member) for member in members]
        )

    def spent_by_members(self, members: Sequence[str]) -> float:
        """Return the largest epsilon spent on any one member, summed over all runs that included it."""
        with self._transaction() as connection:
            return self._member_max(connection, list(members), None)

    def spent(self, cohort_key: str) -> float:
        """Return the epsilon spent on the cohort: the sum over its recorded and reserved runs."""
        with self._transaction() as connection:
            epsilon, _ = self._sum(connection, cohort_key)
        return epsilon

    def spent_delta(self, cohort_key: str) -> float:
        """Return the delta spent on the cohort: the sum of its runs' deltas."""
        with self._transaction() as connection:
            _, delta = self._sum(connection, cohort_key)
        return delta

    def entries(self, cohort_key: str) -> list[LedgerEntry]:
        """Return the cohort's runs, oldest change first."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT cohort_key, run_id, epsilon, delta, accountant, status, updated_utc FROM runs "
                "WHERE cohort_key = ? ORDER BY updated_utc, run_id",
                (cohort_key,),
            ).fetchall()
        return [LedgerEntry(*row) for row in rows]

    def check_budget(
        self,
        cohort_key: str,
        planned_epsilon: float,
        cohort_budget: float | None,
        *,
        run_id: str | None = None,
        delta: float = 0.0,
        members: Sequence[str] = (),
    ) -> float:
        """Raise before training when the run would take the cohort over its budget.

        With ``run_id``, the check also reserves ``planned_epsilon`` for the run in the
        same transaction, so concurrent runs see each other. A resumed run passes its
        own ``run_id`` and is not counted twice.

        Args:
            cohort_key: From :func:`cohort_key`.
            planned_epsilon: Epsilon the run will spend if it runs to the end.
            cohort_budget: Maximum total epsilon on the cohort; None means no limit
                (the check then only reserves).
            run_id: The run to reserve for, or None to check only.
            delta: The run's planned delta, stored with the reservation.
            members: Hashes of the run's scan files. When given, the check also uses
                the largest spend of any member across all cohorts, so a cohort that
                shares scans with earlier ones cannot start from zero.

        Returns:
            The epsilon left on the cohort after this run (``inf`` without a budget).

        Raises:
            PrivacyError: The budget would be exceeded; the message gives what was spent.
        """
        planned_epsilon = _check_epsilon(planned_epsilon, "Planned epsilon")
        if cohort_budget is not None and not cohort_budget > 0:
            raise PrivacyError(f"Cohort budget {cohort_budget} is invalid; it must be > 0.")
        with self._transaction() as connection:
            spent, _ = self._sum(connection, cohort_key, exclude_run=run_id)
            spent = max(spent, self._member_max(connection, list(members), run_id))
            total = spent + planned_epsilon
            if cohort_budget is not None and total > cohort_budget:
                raise PrivacyError(
                    f"This run would spend epsilon {planned_epsilon:.4g} on a cohort that has already spent "
                    f"{spent:.4g} of its budget {cohort_budget:g} (total {total:.4g}; with members, the largest "
                    "spend of any scan, including runs on other cohorts that share it). Lower the target epsilon "
                    f"to at most {max(cohort_budget - spent, 0.0):.4g}, or stop: a cohort budget exists "
                    "because every model trained on the same patients adds to what can be learnt about them."
                )
            if run_id is not None:
                connection.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, 'planned', 'reserved', ?) "
                    "ON CONFLICT (cohort_key, run_id) DO UPDATE SET epsilon = excluded.epsilon, "
                    "delta = excluded.delta, accountant = excluded.accountant, status = excluded.status, "
                    "updated_utc = excluded.updated_utc WHERE runs.status = 'reserved'",
                    (cohort_key, run_id, planned_epsilon, float(delta), _now()),
                )
                if members:
                    self._store_members(connection, cohort_key, run_id, list(members))
        logger.info("Privacy budget check passed: cohort total %.4g after this run", total)
        return math.inf if cohort_budget is None else cohort_budget - total

    def record_run(
        self,
        cohort_key: str,
        run_id: str,
        epsilon: float,
        delta: float,
        accountant: str,
        *,
        members: Sequence[str] = (),
    ) -> None:
        """Record a run's final epsilon, replacing its reservation or an earlier record.

        Call it with the epsilon recomputed from the run's history (for a resumed run,
        the whole history), so a run is charged once, at what it actually spent. Pass
        ``members`` (hashes of the run's scan files) to charge each scan as well; members
        given at ``check_budget`` are kept when this call gives none.

        Raises:
            PrivacyError: Epsilon or delta is invalid, or the database cannot be written.
        """
        epsilon = _check_epsilon(epsilon, "Epsilon")
        if not 0.0 <= float(delta) < 1.0:
            raise PrivacyError(f"Delta {delta} is invalid; it must be in [0, 1).")
        if not run_id:
            raise PrivacyError("A run id is needed to record a run in the privacy ledger.")
        with self._transaction() as connection:
            previous = connection.execute(
                "SELECT epsilon, status FROM runs WHERE cohort_key = ? AND run_id = ?", (cohort_key, run_id)
            ).fetchone()
            connection.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, 'recorded', ?) "
                "ON CONFLICT (cohort_key, run_id) DO UPDATE SET epsilon = excluded.epsilon, "
                "delta = excluded.delta, accountant = excluded.accountant, status = excluded.status, "
                "updated_utc = excluded.updated_utc",
                (cohort_key, run_id, epsilon, float(delta), str(accountant), _now()),
            )
            if members:
                self._store_members(connection, cohort_key, run_id, list(members))
        if previous is not None and previous[1] == "reserved" and epsilon > previous[0]:
            logger.warning(
                "Run spent epsilon %.4g, more than the %.4g it reserved in the privacy ledger", epsilon, previous[0]
            )
