"""Turn the audit log into the state of each synthetic scan: pending, approved, rejected.

A decision counts only for the exact file it was made on (its SHA-256) and the exact
evaluation it was made under (the evaluation id of ``report.json``).  Regenerating a
file changes its hash and re-evaluating a run changes the id, so an old approval never
carries over to content that no reviewer has seen.

The rules, applied the same way when a decision is recorded and when the log is read:

* A scan's state is its latest ``approve`` or ``reject`` row (a correction is a new row).
* A scan the memorization check flagged is approved only when, after that latest
  approval, a privacy officer other than the approving reviewer recorded an
  ``override`` row with a written reason.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medgan.errors import InputError, ReviewError
from medgan.review.audit import AuditLog, AuditRow

__all__ = [
    "ScanState",
    "audit_log_path",
    "load_report",
    "flagged_files",
    "scan_states",
    "approved_hashes",
    "record_decision",
]

logger = logging.getLogger(__name__)


def audit_log_path(run_dir: Path) -> Path:
    """Return ``<run>/review/audit.sqlite``."""
    return Path(run_dir) / "review" / "audit.sqlite"


def load_report(run_dir: Path) -> dict[str, Any]:
    """Read ``<run>/report.json``.

    Raises:
        InputError: the report is missing or is not a JSON object.
    """
    path = Path(run_dir) / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} not found; run `medgan evaluate` on this run before reviewing it") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not valid JSON ({error}); re-run `medgan evaluate` to rewrite it") from error
    if not isinstance(report, dict):
        raise InputError(f"{path} does not contain a JSON object; re-run `medgan evaluate` to rewrite it")
    return report


def _file_name(entry: str) -> str:
    # report.json may name a synthetic file with or without its folder.
    return Path(str(entry)).name


def flagged_files(report: dict[str, Any]) -> set[str]:
    """Return the file names the memorization check flagged.

    A scan counts as flagged when it is listed in ``memorization.flagged`` or when its
    ``per_scan`` row has ``flagged: true`` or ``authentic: false``, so a report that
    marks a copy in only one of those places still needs the override.
    """
    memorization = report.get("memorization") or {}
    names = {_file_name(item["synthetic"]) for item in memorization.get("flagged") or [] if "synthetic" in item}
    for item in memorization.get("per_scan") or []:
        if "synthetic" in item and (item.get("flagged") is True or item.get("authentic") is False):
            names.add(_file_name(item["synthetic"]))
    return names


@dataclass(frozen=True)
class ScanState:
    """Review state of one synthetic scan under one evaluation id."""

    file: str
    sha256: str
    flagged: bool
    decision: AuditRow | None
    """Latest ``approve`` or ``reject`` row, or None while pending."""
    override: AuditRow | None
    """Valid privacy-officer override after that decision, if any."""

    @property
    def approved(self) -> bool:
        """True when the scan may be exported."""
        if self.decision is None or self.decision.decision != "approve":
            return False
        return not self.flagged or self.override is not None

    @property
    def status(self) -> str:
        """One of ``pending``, ``approved``, ``rejected``, ``awaiting override``."""
        if self.decision is None:
            return "pending"
        if self.decision.decision == "reject":
            return "rejected"
        return "approved" if self.approved else "awaiting override"


def _state_for(file: str, sha256: str, flagged: bool, rows: list[AuditRow]) -> ScanState:
    # rows: this scan's rows for one evaluation id, in chain order.
    decision = None
    for row in rows:
        if row.decision in ("approve", "reject"):
            decision = row
    override = None
    if decision is not None and decision.decision == "approve":
        for row in rows:
            if row.decision == "override" and row.seq > decision.seq and row.role == "privacy-officer" and row.reviewer != decision.reviewer:
                override = row
                break
    return ScanState(file=file, sha256=sha256, flagged=flagged, decision=decision, override=override)


def _rows_by_hash(log: AuditLog, evaluation_id: str) -> dict[str, list[AuditRow]]:
    problems = log.verify() if log.exists() else []
    if problems:
        raise ReviewError(f"audit log {log.path} failed verification ({problems[0]}); no decision in it can be trusted until a reviewer checks it with `medgan audit verify`")
    grouped: dict[str, list[AuditRow]] = {}
    for row in log.rows():
        if row.evaluation_id == evaluation_id:
            grouped.setdefault(row.scan_sha256, []).append(row)
    return grouped


def scan_states(run_dir: Path, evaluation_id: str, report: dict[str, Any] | None = None) -> list[ScanState]:
    """Return the state of every synthetic scan listed in ``report.json``, flagged first.

    Raises:
        InputError: the report is missing or lists a scan without a SHA-256.
        ReviewError: the audit log fails verification.
    """
    run_dir = Path(run_dir)
    report = load_report(run_dir) if report is None else report
    flagged = flagged_files(report)
    grouped = _rows_by_hash(AuditLog(audit_log_path(run_dir)), evaluation_id)
    states = []
    for entry in report.get("synthetic") or []:
        file = _file_name(entry.get("file", ""))
        sha256 = entry.get("sha256")
        if not file or not sha256:
            raise InputError(f"{run_dir / 'report.json'}: synthetic entry {entry!r} lacks 'file' or 'sha256'; re-run `medgan evaluate`")
        states.append(_state_for(file, sha256, file in flagged, grouped.get(sha256, [])))
    states.sort(key=lambda state: (not state.flagged, state.file))
    return states


def approved_hashes(run_dir: Path, evaluation_id: str) -> set[str]:
    """Return the SHA-256 digests of synthetic files approved under ``evaluation_id``.

    Only hashes listed in ``report.json`` count, and a flagged scan counts only with a
    privacy officer's override (see the module rules).  A run without an audit log has
    no approvals and returns an empty set.

    Raises:
        ReviewError: the audit log fails verification, so no approval can be trusted.
        InputError: the log exists but ``report.json`` is missing or malformed.
    """
    run_dir = Path(run_dir)
    log = AuditLog(audit_log_path(run_dir))
    if not log.exists():
        return set()
    report = load_report(run_dir)
    flagged = flagged_files(report)
    grouped = _rows_by_hash(log, evaluation_id)
    approved: set[str] = set()
    for sha256, rows in grouped.items():
        files = {_file_name(entry.get("file", "")) for entry in report.get("synthetic") or [] if entry.get("sha256") == sha256}
        if not files:
            continue
        # A hash flagged under any of its file names stays flagged.
        is_flagged = bool(files & flagged) or any(_file_name(row.scan_file) in flagged for row in rows)
        if _state_for(min(files), sha256, is_flagged, rows).approved:
            approved.add(sha256)
    return approved


def record_decision(
    run_dir: Path,
    *,
    reviewer: str,
    role: str,
    identity_source: str,
    scan_file: str,
    scan_sha256: str,
    evaluation_id: str,
    decision: str,
    reason: str,
    flagged: bool,
) -> AuditRow:
    """Check a decision against the review rules and append it to the run's audit log.

    Raises:
        ReviewError: the reason is empty, an override comes from someone who is not a
            privacy officer, targets an unflagged or not yet approved scan, or comes
            from the reviewer who approved it.
    """
    if not reason or not reason.strip():
        raise ReviewError(f"a {decision} of {scan_file} needs a written reason")
    log = AuditLog(audit_log_path(Path(run_dir)))
    if decision == "override":
        if role != "privacy-officer":
            raise ReviewError(f"{reviewer} has role {role!r}; only a privacy officer may override a memorization flag")
        if not flagged:
            raise ReviewError(f"{scan_file} is not flagged by the memorization check, so there is nothing to override")
        rows = _rows_by_hash(log, evaluation_id).get(scan_sha256, [])
        state = _state_for(scan_file, scan_sha256, flagged, rows)
        if state.decision is None or state.decision.decision != "approve":
            raise ReviewError(f"{scan_file} has no current approval; a reviewer approves it first, then a privacy officer overrides the flag")
        if state.decision.reviewer == reviewer:
            raise ReviewError(f"{reviewer} approved {scan_file}; the override needs a second person with the privacy-officer role")
    return log.append(
        reviewer=reviewer,
        role=role,
        identity_source=identity_source,
        scan_file=scan_file,
        scan_sha256=scan_sha256,
        evaluation_id=evaluation_id,
        decision=decision,
        reason=reason,
    )
