"""``medgan export`` and ``medgan scan-leaks`` through the click group."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from medgan.cli.main import cli


def test_export_cli_staging(ct_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "--run", str(ct_run), "--format", "dicom", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "syn-0001" / "0006.dcm").is_file()


def test_export_cli_release_blocked(ct_run: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "--run", str(ct_run), "--approved-only"])
    assert result.exit_code == 2
    assert "no synthetic scan" in result.output


def test_scan_leaks_cli_finds(ct_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "notes.md").write_text("patient MRN4471829")
    result = CliRunner().invoke(cli, ["scan-leaks", str(folder), "--run", str(ct_run)])
    assert result.exit_code == 2
    assert "notes.md: id in text" in result.output


def test_scan_leaks_cli_clean(ct_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "notes.md").write_text("synthetic only")
    result = CliRunner().invoke(cli, ["scan-leaks", str(folder), "--run", str(ct_run)])
    assert result.exit_code == 0, result.output
