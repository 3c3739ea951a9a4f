from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from .conftest import EVALUATION_ID, write_volume

from medgan.errors import ReviewError
from medgan.review.approvals import approved_hashes, audit_log_path, record_decision, scan_states
import numpy as np


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text())


def _decide(run_dir: Path, index: int, decision: str, reviewer: str = "ana", role: str = "reviewer", evaluation_id: str = EVALUATION_ID) -> None:
    entry = _report(run_dir)["synthetic"][index]
    record_decision(
        run_dir,
        reviewer=reviewer,
        role=role,
        identity_source="local",
        scan_file=entry["file"],
        scan_sha256=entry["sha256"],
        evaluation_id=evaluation_id,
        decision=decision,
        reason=f"{decision} by {reviewer}",
        flagged=index == 1,
    )


def _sha(run_dir: Path, index: int) -> str:
    return _report(run_dir)["synthetic"][index]["sha256"]


def test_approved_hashes_no_log(run_dir: Path) -> None:
    assert approved_hashes(run_dir, EVALUATION_ID) == set()


def test_approved_hashes_approve_and_reject(run_dir: Path) -> None:
    _decide(run_dir, 0, "approve")
    _decide(run_dir, 2, "reject")
    assert approved_hashes(run_dir, EVALUATION_ID) == {_sha(run_dir, 0)}


def test_approved_hashes_latest_wins(run_dir: Path) -> None:
    _decide(run_dir, 0, "approve")
    _decide(run_dir, 0, "reject", reviewer="ben")
    assert approved_hashes(run_dir, EVALUATION_ID) == set()


def test_approved_hashes_other_evaluation(run_dir: Path) -> None:
    _decide(run_dir, 0, "approve", evaluation_id="eval-old")
    assert approved_hashes(run_dir, EVALUATION_ID) == set()


def test_regenerated_file_not_approved(run_dir: Path) -> None:
    _decide(run_dir, 0, "approve")
    report = _report(run_dir)
    new_hash = write_volume(run_dir / "synthetic" / "syn-0000.nii.gz", np.ones((16, 16, 16)))
    report["synthetic"][0]["sha256"] = new_hash
    (run_dir / "report.json").write_text(json.dumps(report))
    assert approved_hashes(run_dir, EVALUATION_ID) == set()


def test_flagged_needs_override(run_dir: Path) -> None:
    _decide(run_dir, 1, "approve")
    assert approved_hashes(run_dir, EVALUATION_ID) == set()


def test_flagged_with_override(run_dir: Path) -> None:
    _decide(run_dir, 1, "approve")
    _decide(run_dir, 1, "override", reviewer="olga", role="privacy-officer")
    assert approved_hashes(run_dir, EVALUATION_ID) == {_sha(run_dir, 1)}


def test_reject_after_override(run_dir: Path) -> None:
    _decide(run_dir, 1, "approve")
    _decide(run_dir, 1, "override", reviewer="olga", role="privacy-officer")
    _decide(run_dir, 1, "reject", reviewer="ben")
    assert approved_hashes(run_dir, EVALUATION_ID) == set()


def test_override_by_reviewer_role(run_dir: Path) -> None:
    _decide(run_dir, 1, "approve")
    with pytest.raises(ReviewError, match="only a privacy officer"):
        _decide(run_dir, 1, "override", reviewer="ben", role="reviewer")


def test_override_by_approver(run_dir: Path) -> None:
    _decide(run_dir, 1, "approve", reviewer="olga", role="privacy-officer")
    with pytest.raises(ReviewError, match="second person"):
        _decide(run_dir, 1, "override", reviewer="olga", role="privacy-officer")


def test_override_before_approval(run_dir: Path) -> None:
    with pytest.raises(ReviewError, match="no current approval"):
        _decide(run_dir, 1, "override", reviewer="olga", role="privacy-officer")


def test_self_override_row_ignored(run_dir: Path) -> None:
    # A row written around record_decision: the approver overriding their own approval.
    from medgan.review.audit import AuditLog

    _decide(run_dir, 1, "approve", reviewer="olga", role="privacy-officer")
    AuditLog(audit_log_path(run_dir)).append(
        reviewer="olga", role="privacy-officer", scan_file="syn-0001.nii.gz", scan_sha256=_sha(run_dir, 1), evaluation_id=EVALUATION_ID, decision="override", reason="mine"
    )
    assert approved_hashes(run_dir, EVALUATION_ID) == set()


def test_tampered_log_raises(run_dir: Path) -> None:
    _decide(run_dir, 0, "reject")
    connection = sqlite3.connect(audit_log_path(run_dir))
    connection.execute("DROP TRIGGER decisions_no_update")
    connection.execute("UPDATE decisions SET decision = 'approve'")
    connection.commit()
    connection.close()
    with pytest.raises(ReviewError, match="failed verification"):
        approved_hashes(run_dir, EVALUATION_ID)


def test_scan_states_flagged_first(run_dir: Path) -> None:
    _decide(run_dir, 1, "approve")
    states = scan_states(run_dir, EVALUATION_ID)
    assert [state.file for state in states] == ["syn-0001.nii.gz", "syn-0000.nii.gz", "syn-0002.nii.gz"]
    assert [state.status for state in states] == ["awaiting override", "pending", "pending"]


def test_flagged_files_both_layouts() -> None:
    from medgan.review.approvals import flagged_files

    report = {
        "memorization": {
            "flagged": [{"synthetic": "syn-0000.nii.gz"}],
            "per_scan": [
                {"synthetic": "syn-0001.nii.gz", "flagged": True},
                {"synthetic": "syn-0002.nii.gz", "authentic": False},
                {"synthetic": "syn-0003.nii.gz", "authentic": True},
            ],
        }
    }
    assert flagged_files(report) == {"syn-0000.nii.gz", "syn-0001.nii.gz", "syn-0002.nii.gz"}


def test_per_scan_only_flag_needs_override(run_dir: Path) -> None:
    report = _report(run_dir)
    report["memorization"]["flagged"] = []
    (run_dir / "report.json").write_text(json.dumps(report))
    _decide(run_dir, 1, "approve")
    assert approved_hashes(run_dir, EVALUATION_ID) == set()
