from __future__ import annotations

import os
from pathlib import Path

import pytest

from medgan.errors import InputError
from medgan.review.paths import discover_runs, resolve_inside


@pytest.mark.parametrize("relative", ["../secret", "run-a/../../secret", "/etc/passwd", "run-a\\..\\x", "a\x00b", ""], ids=["parent", "nested-parent", "absolute", "backslash", "nul", "empty"])
def test_resolve_inside_rejects(runs_dir: Path, relative: str) -> None:
    with pytest.raises(InputError):
        resolve_inside(runs_dir, relative)


def test_resolve_inside_symlink_out(runs_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", runs_dir / "link")
    with pytest.raises(InputError, match="symbolic link"):
        resolve_inside(runs_dir, "link/report.json")


def test_resolve_inside_accepts(runs_dir: Path) -> None:
    assert resolve_inside(runs_dir, "run-a/synthetic/syn-0000.nii.gz") == (runs_dir / "run-a/synthetic/syn-0000.nii.gz").resolve()


def test_discover_runs_skips_outside_link(runs_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "report.json").write_text("{}")
    os.symlink(outside, runs_dir / "linked-run")
    (runs_dir / "not-a-run").mkdir()
    assert discover_runs(runs_dir) == ["run-a"]
