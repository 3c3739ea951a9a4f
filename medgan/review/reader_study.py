"""Blinded reader study: can a reader tell real holdout scans from synthetic ones?

A study shows one reader a shuffled mix of real holdout scans and synthetic scans with
no label, file name or id on screen.  Each guess (real or synthetic, with a confidence
from 1 to 5) goes to ``<run>/review/reader_study.sqlite``, an append-only table guarded
by the same triggers as the audit log.  Accuracy near 50 % means readers cannot tell
the two apart. The Wilson interval gives the uncertainty of that accuracy for the
number of guesses made.
"""

from __future__ import annotations

import datetime as _dt
import logging
import random
import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import binomtest

from medgan.errors import ReviewError
from medgan.review.audit import BUSY_TIMEOUT_MS

__all__ = ["StudyItem", "ReaderScore", "study_path", "plan_study", "record_guess", "reader_scores", "wilson_interval"]

logger = logging.getLogger(__name__)

KINDS = ("real", "synthetic")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS guesses (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    time_utc        TEXT NOT NULL,
    study_id        TEXT NOT NULL,
    reader          TEXT NOT NULL,
    identity_source TEXT NOT NULL,
    item            TEXT NOT NULL,
    truth           TEXT NOT NULL CHECK (truth IN ('real', 'synthetic')),
    guess           TEXT NOT NULL CHECK (guess IN ('real', 'synthetic')),
    confidence      INTEGER NOT NULL CHECK (confidence BETWEEN 1 AND 5)
);
CREATE TRIGGER IF NOT EXISTS guesses_no_update BEFORE UPDATE ON guesses
BEGIN
    SELECT RAISE(ABORT, 'reader-study guesses are append-only');
END;
CREATE TRIGGER IF NOT EXISTS guesses_no_delete BEFORE DELETE ON guesses
BEGIN
    SELECT RAISE(ABORT, 'reader-study guesses are append-only');
END;
"""


@dataclass(frozen=True)
class StudyItem:
    """One scan of a study; ``truth`` and ``reference`` stay on the server."""

    truth: str
    reference: str
    """Synthetic file name or real pseudonymous scan id."""


@dataclass(frozen=True)
class ReaderScore:
    """One reader's accuracy with its 95 % Wilson score interval."""

    reader: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float


def study_path(run_dir: Path) -> Path:
    """Return ``<run>/review/reader_study.sqlite``."""
    return Path(run_dir) / "review" / "reader_study.sqlite"


def plan_study(real_ids: list[str], synthetic_files: list[str], n_each: int, seed: int | None = None) -> tuple[str, list[StudyItem]]:
    """Draw up to ``n_each`` real and ``n_each`` synthetic scans and shuffle them.

    Returns:
        a new study id and the shuffled items.

    Raises:
        ReviewError: there are no real holdout scans or no synthetic scans to show.
    """
    if not real_ids:
        raise ReviewError("the run has no real holdout scans in its pseudonym map, so a blinded study cannot mix real and synthetic scans")
    if not synthetic_files:
        raise ReviewError("the run has no synthetic scans; run `medgan generate` first")
    generator = random.Random(seed if seed is not None else uuid.uuid4().int)
    real = generator.sample(sorted(real_ids), min(n_each, len(real_ids)))
    synthetic = generator.sample(sorted(synthetic_files), min(n_each, len(synthetic_files)))
    items = [StudyItem("real", reference) for reference in real] + [StudyItem("synthetic", reference) for reference in synthetic]
    generator.shuffle(items)
    return uuid.uuid4().hex, items


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.executescript(_SCHEMA)
    return connection


def record_guess(run_dir: Path, *, study_id: str, reader: str, identity_source: str, item: StudyItem, guess: str, confidence: int) -> None:
    """Append one reader's guess for one item.

    Raises:
        ReviewError: the guess or confidence is invalid.
    """
    if guess not in KINDS:
        raise ReviewError(f"guess {guess!r} is invalid; use 'real' or 'synthetic'")
    if not isinstance(confidence, int) or not 1 <= confidence <= 5:
        raise ReviewError(f"confidence {confidence!r} is invalid; use a whole number from 1 (guessing) to 5 (certain)")
    if not reader.strip():
        raise ReviewError("a reader-study guess needs a signed-in reader")
    time_utc = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")
    with closing(_connect(study_path(run_dir))) as connection:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO guesses (time_utc, study_id, reader, identity_source, item, truth, guess, confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (time_utc, study_id, reader, identity_source, item.reference, item.truth, guess, confidence),
        )
        connection.execute("COMMIT")


def wilson_interval(correct: int, n: int, confidence_level: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion (scipy's ``binomtest``).

    Raises:
        ReviewError: ``n`` is zero, so no interval exists.
    """
    if n <= 0:
        raise ReviewError("a reader with no guesses has no accuracy interval")
    interval = binomtest(correct, n).proportion_ci(confidence_level=confidence_level, method="wilson")
    return float(interval.low), float(interval.high)


def reader_scores(run_dir: Path) -> list[ReaderScore]:
    """Return each reader's accuracy over all their guesses, sorted by reader name."""
    path = study_path(run_dir)
    if not path.is_file():
        return []
    with closing(_connect(path)) as connection:
        rows = connection.execute("SELECT reader, SUM(truth = guess), COUNT(*) FROM guesses GROUP BY reader ORDER BY reader").fetchall()
    scores = []
    for reader, correct, n in rows:
        low, high = wilson_interval(int(correct), int(n))
        scores.append(ReaderScore(reader=reader, n=int(n), correct=int(correct), accuracy=int(correct) / int(n), ci_low=low, ci_high=high))
    return scores
