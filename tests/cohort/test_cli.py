"""``medgan cohort build`` on the command line."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from medgan.cli.main import cli


def test_cli_build_matches_library(tmp_path: Path) -> None:
    from medgan.cohort import build_cohort

    runner = CliRunner()
    result = runner.invoke(cli, ["cohort", "build", "--out", str(tmp_path / "cli"), "--n", "6", "--seed", "4", "--grid", "16", "--canaries", "1", "--scans-per-patient", "2"])
    build_cohort(tmp_path / "lib", 6, 4, 16, n_canaries=1, scans_per_patient=2)
    assert result.exit_code == 0, result.output
    cli_bytes = (tmp_path / "cli" / "cohort.json").read_bytes()
    lib_bytes = (tmp_path / "lib" / "cohort.json").read_bytes()
    assert hashlib.sha256(cli_bytes).hexdigest() == hashlib.sha256(lib_bytes).hexdigest()
    assert len((tmp_path / "cli" / "manifest.csv").read_text().splitlines()) == 1 + 12


def test_cli_existing_folder_exits_2(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("x")
    result = CliRunner().invoke(cli, ["cohort", "build", "--out", str(tmp_path / "c"), "--n", "4", "--seed", "0", "--grid", "16"])
    assert result.exit_code == 2
    assert "not empty" in result.output


def test_cli_rejects_grid(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["cohort", "build", "--out", str(tmp_path / "c"), "--n", "4", "--seed", "0", "--grid", "24"])
    assert result.exit_code == 2
    assert "24" in result.output
