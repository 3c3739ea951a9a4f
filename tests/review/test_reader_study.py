from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medgan.errors import ReviewError
from medgan.review.reader_study import StudyItem, plan_study, reader_scores, record_guess, study_path, wilson_interval


def test_wilson_interval_reference() -> None:
    # 8 of 10 correct: Wilson 95 % interval from the closed form, z = 1.959964.
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4901624, abs=1e-6)
    assert high == pytest.approx(0.9433178, abs=1e-6)


def test_plan_study_mixes_both() -> None:
    _, items = plan_study(["scan-000000000001", "scan-000000000002"], ["syn-0000.nii.gz", "syn-0001.nii.gz", "syn-0002.nii.gz"], n_each=2, seed=3)
    assert sorted(item.truth for item in items) == ["real", "real", "synthetic", "synthetic"]


def test_plan_study_without_holdout() -> None:
    with pytest.raises(ReviewError, match="no real holdout scans"):
        plan_study([], ["syn-0000.nii.gz"], n_each=2)


def test_reader_scores_per_reader(tmp_path: Path) -> None:
    real, synthetic = StudyItem("real", "scan-000000000001"), StudyItem("synthetic", "syn-0000.nii.gz")
    for guess in ("real", "synthetic", "synthetic"):
        record_guess(tmp_path, study_id="s1", reader="ana", identity_source="local", item=synthetic, guess=guess, confidence=3)
    record_guess(tmp_path, study_id="s2", reader="ben", identity_source="local", item=real, guess="real", confidence=5)
    scores = {score.reader: score for score in reader_scores(tmp_path)}
    assert (scores["ana"].n, scores["ana"].correct) == (3, 2)
    assert (scores["ben"].n, scores["ben"].correct) == (1, 1)
    assert (scores["ana"].ci_low, scores["ana"].ci_high) == wilson_interval(2, 3)


def test_record_guess_bad_confidence(tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match="confidence 7"):
        record_guess(tmp_path, study_id="s1", reader="ana", identity_source="local", item=StudyItem("real", "scan-000000000001"), guess="real", confidence=7)


def test_guesses_append_only(tmp_path: Path) -> None:
    record_guess(tmp_path, study_id="s1", reader="ana", identity_source="local", item=StudyItem("real", "scan-000000000001"), guess="real", confidence=2)
    with sqlite3.connect(study_path(tmp_path)) as connection, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("UPDATE guesses SET guess = 'synthetic'")
