"""Table logic of the privacy-utility benchmark (benchmarks/privacy_utility/summary.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "privacy_utility"))

from summary import beats_baselines, markdown_table, row_from_sections  # noqa: E402


def _sections(fid: tuple[float, float, float]) -> dict:
    value, low, high = fid
    return {
        "fidelity": {"fid": {"synthetic_vs_train": {"value": value, "ci_low": low, "ci_high": high}, "holdout_vs_train": {"value": 1.0, "ci_low": 0.5, "ci_high": 1.5}}},
        "utility": {"tasks": {"lesion": {"train_synthetic": {"value": 0.8, "ci_low": 0.7, "ci_high": 0.9}}}},
        "attack": {"mia_auc": {"value": 0.52, "ci_low": 0.45, "ci_high": 0.6}},
        "memorization": {"flagged": [{"synthetic": "syn-0001.nii.gz"}]},
    }


def _row(method: str, fid: tuple[float, float, float]) -> dict:
    return row_from_sections(method, 8.0, _sections(fid), wall_s=12.0, canaries={"reproduced": 1, "synthetic": 40})


def test_row_reads_sections() -> None:
    row = _row("medgan", (10.0, 9.0, 11.0))
    assert row["fid"] == {"value": 10.0, "ci_low": 9.0, "ci_high": 11.0}
    assert row["tstr"]["value"] == 0.8
    assert row["mia_auc"]["ci_high"] == 0.6
    assert row["copies_flagged"] == 1
    assert row["kid"] == {"value": None, "ci_low": None, "ci_high": None}


@pytest.mark.parametrize(
    ("baseline_fid", "expected"),
    [((30.0, 20.0, 40.0), True), ((12.0, 10.5, 13.0), False), ((30.0, None, 40.0), None)],
    ids=["separated", "overlapping", "unknown"],
)
def test_beats_baselines_needs_separated_intervals(baseline_fid: tuple, expected: bool | None) -> None:
    model = _row("medgan", (10.0, 9.0, 11.0))
    baseline = _row("baseline: voxel Gaussian", baseline_fid)
    assert beats_baselines(model, [baseline]) is expected


def test_table_marks_missing_values() -> None:
    row = _row("medgan", (10.0, 9.0, 11.0))
    row["beats_baselines"] = True
    lines = markdown_table([row]).splitlines()
    assert len(lines) == 3
    assert "| medgan | 8 | n/a | 10 [9, 11] | n/a |" in lines[2]
    assert "| 1/40 | yes |" in lines[2]
