"""Tiny run folders built to the report.json schema of docs/architecture.md."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.fileio import sha256_file

EVALUATION_ID = "eval-0001"


def write_volume(path: Path, array: np.ndarray) -> str:
    """Write ``array`` as a NIfTI with a 1 mm identity affine; return its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array.astype(np.float32), np.eye(4)), str(path))
    return sha256_file(path)


def phantom(size: int, seed: int) -> np.ndarray:
    """Return a chest-like CT phantom in HU: body, two lungs, a spine and a heart, (X, Y, Z)."""
    rng = np.random.default_rng(seed)
    grid = (np.indices((size, size, size)) + 0.5) / size * 2 - 1  # (3, X, Y, Z) in [-1, 1]
    x, y, z = grid
    jitter = rng.uniform(-0.05, 0.05, size=4)
    volume = np.full((size, size, size), -1000.0)
    volume[(x / 0.85) ** 2 + ((y + jitter[0]) / 0.6) ** 2 < 1] = 40.0
    for side in (-1, 1):
        volume[((x - side * (0.38 + jitter[1])) / 0.28) ** 2 + ((y + 0.05) / 0.4) ** 2 + (z / 0.85) ** 2 < 1] = -820.0
    volume[((x + 0.08) / 0.2) ** 2 + ((y - 0.15 - jitter[2]) / 0.2) ** 2 + ((z + 0.2) / 0.35) ** 2 < 1] = 60.0
    volume[(x / 0.09) ** 2 + ((y + 0.42 + jitter[3]) / 0.09) ** 2 < 1] = 700.0
    return volume + rng.normal(0, 15, size=volume.shape)


def make_run(root: Path, name: str = "run-a", n_synthetic: int = 3, flagged: tuple[int, ...] = (1,), private: bool = True, size: int = 16, realistic: bool = False) -> Path:
    """Create ``root/name`` with synthetic scans, a report, an id map and a training log."""
    run = root / name
    rng = np.random.default_rng(len(name))
    site = root.parent / f"{root.name}-site"
    train_ids = []
    for index in range(2):
        scan_id = f"scan-{index:012x}"
        write_volume(site / f"train{index}.nii.gz", phantom(size, 100 + index) if realistic else rng.normal(size=(size, size, size)) * 100)
        train_ids.append(scan_id)
    holdout_id = "scan-00000000ffff"
    write_volume(site / "holdout.nii.gz", rng.normal(size=(size, size, size)) * 100)
    id_map = {scan_id: {"source": str(site / f"train{index}.nii.gz"), "patient_id": f"pat-{index:012x}", "split": "train"} for index, scan_id in enumerate(train_ids)}
    id_map[holdout_id] = {"source": str(site / "holdout.nii.gz"), "patient_id": "pat-00000000ffff", "split": "holdout"}
    (run / "private").mkdir(parents=True)
    (run / "private" / "id_map.json").write_text(json.dumps(id_map))
    log_lines = [{"step": step, "epsilon": 0.1 * step, "loss_g": 1.0 / step, "loss_d_real": 0.5} for step in range(1, 6)]
    (run / "private" / "train_log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in log_lines))

    synthetic, per_scan, flagged_rows = [], [], []
    for index in range(n_synthetic):
        file = f"syn-{index:04d}.nii.gz"
        if realistic:
            array = phantom(size, index)
        else:
            array = np.zeros((size, size, size))
            array[index : index + size // 2, 2:10, 3:12] = 50.0 * (index + 1)
        digest = write_volume(run / "synthetic" / file, array)
        synthetic.append({"file": file, "labels": {"condition": "chest_ct"}, "sha256": digest, "modality": "CT"})
        is_flagged = index in flagged
        similarity = 0.97 if is_flagged else 0.4 + 0.05 * index
        # The evaluation stage's per-scan layout.
        per_scan.append(
            {
                "synthetic": file,
                "nearest_train": train_ids[index % 2],
                "similarity_train": similarity,
                "nearest_holdout": holdout_id,
                "similarity_holdout": 0.3,
                "authentic": not is_flagged,
            }
        )
        if is_flagged:
            flagged_rows.append({"synthetic": file, "nearest_train": train_ids[index % 2], "similarity": similarity, "threshold": 0.9})
    report = {
        "medgan_version": "0.1.0",
        "run_name": name,
        "created_utc": "2026-12-04T12:00:00+00:00",
        "config": {"name": name, "preprocess": {"grid": size, "spacing_mm": 1.0}, "privacy": {"enabled": private}},
        "data": {"n_patients": 3, "n_scans": 3, "labels": {"condition": ["chest_ct"]}, "profile": {"grid": size, "spacing_mm": 1.0}},
        "privacy": {
            "private": private,
            "epsilon": 8.0 if private else None,
            "delta": 1e-5 if private else None,
            "accountant": "prv" if private else None,
            "cohort_epsilon_total": 12.5 if private else None,
            "noise_to_signal": 0.8 if private else None,
            "warnings": [] if private else ["trained without differential privacy"],
        },
        "evaluation": {"id": EVALUATION_ID},
        "fidelity": {"ssim": {"value": 0.61, "ci": [0.55, 0.67], "noise_floor": 0.7}},
        "memorization": {
            "flagged": flagged_rows,
            "per_scan": per_scan,
            "rule": "distance below the 5th percentile of holdout-to-train distances",
            "threshold": {"distance_threshold": 0.1, "similarity_threshold": 0.9},
            "blocks_release": bool(flagged_rows),
        },
        "synthetic": synthetic,
    }
    (run / "report.json").write_text(json.dumps(report, indent=2))
    return run


@pytest.fixture()
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    make_run(root)
    return root


@pytest.fixture()
def run_dir(runs_dir: Path) -> Path:
    return runs_dir / "run-a"
