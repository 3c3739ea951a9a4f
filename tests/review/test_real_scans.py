from __future__ import annotations

import json
from pathlib import Path

import pytest

from medgan.errors import InputError
from medgan.review.real_scans import load_real_scan, scan_ids_in_split


def test_load_real_scan_preprocessed(run_dir: Path) -> None:
    volume = load_real_scan(run_dir, "scan-000000000001", "CT", {"grid": 16, "spacing_mm": 1.0})
    assert volume.array.shape == (16, 16, 16)
    assert volume.zooms == (1.0, 1.0, 1.0)


def test_load_real_scan_hides_source(run_dir: Path) -> None:
    id_map = json.loads((run_dir / "private" / "id_map.json").read_text())
    missing = str(Path(id_map["scan-000000000001"]["source"]).with_name("moved.nii.gz"))
    id_map["scan-000000000001"]["source"] = missing
    (run_dir / "private" / "id_map.json").write_text(json.dumps(id_map))
    with pytest.raises(InputError) as caught:
        load_real_scan(run_dir, "scan-000000000001", "CT", {"grid": 16})
    assert "scan-000000000001" in str(caught.value)
    assert "moved" not in str(caught.value)


@pytest.mark.parametrize("scan_id", ["../../etc/passwd", "scan-00000000000g", "scan-999999999999"], ids=["traversal", "not-hex", "unknown"])
def test_load_real_scan_rejects_id(run_dir: Path, scan_id: str) -> None:
    with pytest.raises(InputError):
        load_real_scan(run_dir, scan_id, "CT", None)


def test_holdout_ids_from_split(run_dir: Path) -> None:
    assert scan_ids_in_split(run_dir, "holdout") == ["scan-00000000ffff"]


def test_holdout_ids_from_nearest_json(run_dir: Path) -> None:
    id_map = json.loads((run_dir / "private" / "id_map.json").read_text())
    for entry in id_map.values():
        entry.pop("split")
    (run_dir / "private" / "id_map.json").write_text(json.dumps(id_map))
    evaluation = run_dir / "private" / "evaluation"
    evaluation.mkdir()
    (evaluation / "nearest.json").write_text(json.dumps({"scans": [{"synthetic": "syn-0000.nii.gz", "nearest_holdout": "scan-00000000ffff"}]}))
    assert scan_ids_in_split(run_dir, "holdout") == ["scan-00000000ffff"]


def test_holdout_partner_from_nearest_json(run_dir: Path) -> None:
    from medgan.review.real_scans import holdout_partner

    evaluation = run_dir / "private" / "evaluation"
    evaluation.mkdir()
    (evaluation / "nearest.json").write_text(json.dumps({"scans": [{"synthetic": "syn-0002.nii.gz", "nearest_holdout": "scan-00000000ffff"}]}))
    assert holdout_partner(run_dir, "scan-00000000ffff") == "syn-0002.nii.gz"
