from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from .conftest import EVALUATION_ID

from medgan.cli.main import cli
from medgan.review.approvals import audit_log_path, record_decision


def _approve(run_dir: Path, index: int) -> None:
    entry = json.loads((run_dir / "report.json").read_text())["synthetic"][index]
    record_decision(run_dir, reviewer="ana", role="reviewer", identity_source="local", scan_file=entry["file"], scan_sha256=entry["sha256"], evaluation_id=EVALUATION_ID, decision="approve", reason="ok", flagged=False)


def test_reviewers_add_password_stdin(tmp_path: Path) -> None:
    registry = tmp_path / "reviewers.json"
    result = CliRunner().invoke(cli, ["reviewers", "add", "ana", "--role", "privacy-officer", "--password-stdin", "--registry", str(registry)], input="long-enough-pw\n")
    assert result.exit_code == 0, result.output
    stored = json.loads(registry.read_text())["reviewers"]["ana"]
    assert stored["role"] == "privacy-officer"
    assert stored["password_hash"].startswith("$argon2id$")
    assert "long-enough-pw" not in registry.read_text()


def test_reviewers_add_short_password(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["reviewers", "add", "ana", "--role", "reviewer", "--password-stdin", "--registry", str(tmp_path / "r.json")], input="short\n")
    assert result.exit_code == 2
    assert "shorter than 10 characters" in result.output


def test_reviewers_list(tmp_path: Path) -> None:
    registry = tmp_path / "reviewers.json"
    CliRunner().invoke(cli, ["reviewers", "add", "ana", "--role", "reviewer", "--password-stdin", "--registry", str(registry)], input="long-enough-pw\n")
    CliRunner().invoke(cli, ["reviewers", "add", "olga@example.org", "--role", "privacy-officer", "--oidc", "--registry", str(registry)])
    result = CliRunner().invoke(cli, ["reviewers", "list", "--registry", str(registry)])
    assert result.output.splitlines() == ["ana\treviewer\tpassword", "olga@example.org\tprivacy-officer\tidentity provider"]


def test_audit_verify_intact(run_dir: Path) -> None:
    _approve(run_dir, 0)
    _approve(run_dir, 2)
    result = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)])
    assert result.exit_code == 0
    assert "2 rows, chain intact" in result.output


def test_audit_verify_tampered(run_dir: Path) -> None:
    _approve(run_dir, 0)
    _approve(run_dir, 2)
    connection = sqlite3.connect(audit_log_path(run_dir))
    connection.execute("DROP TRIGGER decisions_no_update")
    connection.execute("UPDATE decisions SET reason = 'edited later' WHERE seq = 1")
    connection.commit()
    connection.close()
    result = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)])
    assert result.exit_code == 2
    assert "row 1: content does not match its hash" in result.output


def test_dashboard_missing_runs(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["dashboard", "--runs", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "runs folder" in result.output


def test_dashboard_binds_loopback_by_default() -> None:
    from medgan.cli.dashboard_cmd import dashboard

    host = next(param for param in dashboard.params if param.name == "host")
    assert host.default == "127.0.0.1"


def test_streamlit_command_address() -> None:
    from medgan.cli.dashboard_cmd import find_app, streamlit_command

    command = streamlit_command(find_app(), "127.0.0.1", 8600)
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "8600"
    assert command[command.index("--browser.gatherUsageStats") + 1] == "false"


@pytest.mark.slow
def test_dashboard_sigterm_stops_streamlit(runs_dir: Path) -> None:
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    medgan = shutil.which("medgan") or str(Path(sys.executable).parent / "medgan")
    process = subprocess.Popen([medgan, "dashboard", "--runs", str(runs_dir), "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).close()
            break
        except OSError:
            time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)


def test_audit_verify_fresh_run_exit_code(run_dir: Path) -> None:
    # A run without review decisions has no audit log yet: the normal state, not a failure.
    result = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)])
    assert result.exit_code == 0


def test_audit_verify_fresh_run_message(run_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)])
    assert result.output == f"no review decisions recorded yet in {run_dir}; nothing to verify\n"


def test_audit_verify_not_a_run_exit_code(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "verify", str(tmp_path)])
    assert result.exit_code == 2


def test_audit_verify_not_a_run_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "verify", str(tmp_path)])
    assert "is not a run folder (report.json not found)" in result.output


def test_audit_verify_removed_log_with_release(run_dir: Path) -> None:
    # A release is made only from approved scans, so a run that has one had an audit log.
    (run_dir / "release" / "nifti").mkdir(parents=True)
    (run_dir / "release" / "nifti" / "dataset_card.md").write_text("card")
    result = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)])
    assert result.exit_code == 2


def test_audit_verify_removed_log_side_files(run_dir: Path) -> None:
    _approve(run_dir, 0)
    log = audit_log_path(run_dir)
    (log.parent / (log.name + "-wal")).write_bytes(b"")
    log.unlink()
    result = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)])
    assert "the log was removed" in result.output
