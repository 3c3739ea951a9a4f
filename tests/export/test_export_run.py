"""export_run: staging and release policies, the card and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.errors import ConfigError, LeakError, ReviewError
from medgan.export import export_run
from medgan.review.approvals import record_decision
from medgan.data.config import PreprocessConfig
from medgan.data.preprocess import canonical_affine

CT_WINDOW = (-1000.0, 1000.0)
GRID = 6
SPACING = 4.0


def _approve(run: Path, numbers: list[int], evaluation_id: str = "eval-001") -> None:
    """Record reviewer approvals in the run's real audit log."""
    for number in numbers:
        entry = _index(run)[number]
        record_decision(
            run,
            reviewer="ana",
            role="reviewer",
            identity_source="local",
            scan_file=entry["file"],
            scan_sha256=entry["sha256"],
            evaluation_id=evaluation_id,
            decision="approve",
            reason="looks synthetic",
            flagged=False,
        )


def _index(run: Path) -> list[dict]:
    return json.loads((run / "synthetic" / "index.json").read_text())


def test_staging_nifti_writes_all(ct_run: Path) -> None:
    summary = export_run(ct_run)
    assert summary.written == ["syn-0000.nii.gz", "syn-0001.nii.gz"]
    assert summary.left_out == []
    assert summary.out_dir == (ct_run / "export" / "nifti").absolute()
    assert (summary.out_dir / "DATASET_CARD.md").is_file()


def test_staging_nifti_values_in_hu(ct_run: Path) -> None:
    summary = export_run(ct_run)
    source = nib.load(str(ct_run / "synthetic" / "syn-0000.nii.gz"))
    exported = nib.load(str(summary.out_dir / "syn-0000.nii.gz"))
    expected = np.asarray(source.dataobj)
    assert np.max(np.abs(np.asarray(exported.dataobj) - expected)) < 1e-3
    assert np.allclose(exported.affine, canonical_affine(PreprocessConfig(grid=GRID, spacing_mm=SPACING)))
    assert int(exported.header["qform_code"]) == int(exported.header["sform_code"]) == 2
    assert exported.get_data_dtype() == np.float32


def test_staging_leaves_out_flagged(run_factory) -> None:
    run = run_factory( n_scans=3, flagged=(1,))
    summary = export_run(run)
    assert summary.written == ["syn-0000.nii.gz", "syn-0002.nii.gz"]
    assert [item["synthetic"] for item in summary.left_out] == ["syn-0001.nii.gz"]
    assert not (summary.out_dir / "syn-0001.nii.gz").exists()


def test_release_requires_approval(ct_run: Path) -> None:
    _approve(ct_run, [1])
    summary = export_run(ct_run, approved_only=True)
    assert summary.written == ["syn-0001.nii.gz"]
    assert summary.left_out[0]["synthetic"] == "syn-0000.nii.gz"
    assert "not approved" in summary.left_out[0]["reason"]


def test_release_other_evaluation_id(ct_run: Path) -> None:
    _approve(ct_run, [0, 1], evaluation_id="eval-000")
    with pytest.raises(ReviewError, match="no synthetic scan"):
        export_run(ct_run, approved_only=True)
    assert not (ct_run / "release").exists() or not any((ct_run / "release").iterdir())


def test_release_blocked_by_flag(run_factory) -> None:
    run = run_factory(n_scans=2, flagged=(0,))
    _approve(run, [1])
    with pytest.raises(ReviewError, match="flagged"):
        export_run(run, approved_only=True)


def test_release_drop_flagged_recorded(run_factory) -> None:
    run = run_factory(n_scans=2, flagged=(0,))
    _approve(run, [1])
    summary = export_run(run, approved_only=True, drop_flagged=True)
    card = json.loads(summary.card_path.read_text())
    assert summary.written == ["syn-0001.nii.gz"]
    assert any("flagged" in step for step in card["privacy"]["not_covered"])
    assert card["dataset"]["kind"] == "release"


def test_release_override_unblocks_flag(run_factory) -> None:
    run = run_factory(n_scans=2, flagged=(0,))
    _approve(run, [1])
    flagged_entry = _index(run)[0]
    common = dict(scan_file=flagged_entry["file"], scan_sha256=flagged_entry["sha256"], evaluation_id="eval-001", flagged=True)
    record_decision(run, reviewer="ana", role="reviewer", identity_source="local", decision="approve", reason="not a copy", **common)
    record_decision(
        run, reviewer="olga", role="privacy-officer", identity_source="local", decision="override",
        reason="compared with the nearest training scan: different anatomy", **common,
    )
    summary = export_run(run, approved_only=True)
    card = json.loads(summary.card_path.read_text())
    assert summary.written == ["syn-0000.nii.gz", "syn-0001.nii.gz"]
    assert any("overrode the flag" in step for step in card["privacy"]["not_covered"])


def test_card_privacy_ledger(ct_run: Path) -> None:
    card = json.loads(export_run(ct_run).card_path.read_text())
    assert card["privacy"]["epsilon"] == 7.9
    assert card["privacy"]["unit"] == "patient"
    assert card["privacy"]["cohort_epsilon_total"] == 11.5
    assert card["generator"]["sha256"] is not None
    assert card["config"]["data"]["manifest"] == "<site path>"


def test_modified_synthetic_rejected(ct_run: Path) -> None:
    path = ct_run / "synthetic" / "syn-0001.nii.gz"
    image = nib.load(str(path))
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj) * 0.5, image.affine), str(path))
    with pytest.raises(Exception, match="SHA-256"):
        export_run(ct_run)
    assert not (ct_run / "export" / "nifti").exists()


def test_leak_in_card_blocks_export(run_factory) -> None:
    run = run_factory()
    report = json.loads((run / "report.json").read_text())
    report["run_name"] = "study of DOE, JOHNATHAN"
    (run / "report.json").write_text(json.dumps(report))
    with pytest.raises(LeakError, match="name"):
        export_run(run)
    assert not (run / "export" / "nifti").exists()
    assert list((run / "export").iterdir()) == []


def test_card_counts_decisions(ct_run: Path) -> None:
    _approve(ct_run, [1])
    card = json.loads(export_run(ct_run, approved_only=True).card_path.read_text())
    assert card["review"]["decisions"]["approved"] == 1
    assert card["review"]["decisions"]["pending"] == 1


def test_leak_keeps_previous_export(run_factory) -> None:
    run = run_factory()
    first = export_run(run)
    report = json.loads((run / "report.json").read_text())
    report["run_name"] = "MRN4471829 cohort"
    (run / "report.json").write_text(json.dumps(report))
    with pytest.raises(LeakError):
        export_run(run)
    assert json.loads(first.card_path.read_text())["dataset"]["name"] == "test-run"


def test_foreign_out_dir_rejected(ct_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a medgan export"):
        export_run(ct_run, out_dir=out)
    assert (out / "thesis.docx").exists()


def test_non_private_card_warns(run_factory) -> None:
    run = run_factory()
    report = json.loads((run / "report.json").read_text())
    report["privacy"] = {"private": False}
    (run / "report.json").write_text(json.dumps(report))
    card = json.loads(export_run(run).card_path.read_text())
    assert card["privacy"]["epsilon_covers"] == []
    assert "WITHOUT differential privacy" in card["warnings"][0]


def test_per_scan_flag_left_out(run_factory) -> None:
    run = run_factory(n_scans=2)
    report = json.loads((run / "report.json").read_text())
    report["memorization"]["per_scan"] = [{"synthetic": "syn-0001.nii.gz", "flagged": True}]
    (run / "report.json").write_text(json.dumps(report))
    assert export_run(run).written == ["syn-0000.nii.gz"]
