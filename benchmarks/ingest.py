"""Ingest throughput against a bare pydicom/nibabel read of the same files.

Measures, on the real scans in data_samples/ (the 48-slice CT series and the NIfTI
volumes of the quickstart manifest):

* ``load``: medgan's ``load_volume`` (all geometry and intensity checks) versus the
  floor, a bare ``pydicom.dcmread`` + ``pixel_array`` stack or ``nibabel.load`` +
  ``get_fdata`` of the same files;
* ``prepare, first run``: ``prepare_cohort`` with an empty cache (load + MONAI chain
  + cache write);
* ``prepare, cached``: the same call again, served from the content-keyed cache.

Each timing is the median of ``--repeats`` runs in this process, after one warm-up
call, so imports are not counted.  Run from the repository root:

    python benchmarks/ingest.py --repeats 5
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from medgan.data.config import DataConfig, PreprocessConfig
from medgan.data.dataset import prepare_cohort
from medgan.data.manifest import Cohort, ScanRecord
from medgan.data.pseudonym import Pseudonymizer
from medgan.data.reader import load_volume

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"


def _median_seconds(function: Callable[[], object], repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bare_dicom(folder: Path) -> np.ndarray:
    planes = [pydicom.dcmread(path).pixel_array for path in sorted(folder.iterdir())]
    return np.stack(planes, axis=-1)  # (rows, columns, slices)


def _bare_nifti(path: Path) -> np.ndarray:
    return nib.load(path).get_fdata(dtype=np.float32)


def _scans() -> list[tuple[str, Path, str]]:
    """Return (name, path, modality) of the benchmark scans."""
    rows = list(csv.DictReader((SAMPLES / "manifest.csv").open(encoding="utf-8")))
    scans = [("CT DICOM 48 slices", SAMPLES / "dicom" / "derived_ct_series_lung1", "CT")]
    for row in rows:
        if row["path"].endswith((".nii", ".nii.gz")):
            scans.append((Path(row["path"]).name, SAMPLES / row["path"], row["modality"]))
    return scans


def _cohort(path: Path, modality: str) -> Cohort:
    record = ScanRecord(
        scan_id="scan-benchmark", patient_id="pat-benchmark", source=path, source_patient_id="benchmark",
        modality=modality, split="train", labels={}, row=2,
    )
    return Cohort(scans=[record], label_names=[], manifest_sha256="", label_values={})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median reported)")
    parser.add_argument("--grid", type=int, default=32, help="model grid edge for the prepare measurements")
    args = parser.parse_args()

    profile = PreprocessConfig(grid=args.grid)
    data = DataConfig(manifest=SAMPLES / "manifest.csv")
    Pseudonymizer(b"b" * 32)
    print(f"| scan | bare read s | load_volume s | load / bare | prepare first run s | prepare cached s | first / cached |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, path, modality in _scans():
        bare = (lambda p=path: _bare_dicom(p)) if path.is_dir() else (lambda p=path: _bare_nifti(p))
        bare_s = _median_seconds(bare, args.repeats)
        load_s = _median_seconds(lambda p=path, m=modality: load_volume(p, modality=m), args.repeats)
        cohort = _cohort(path, modality)
        first_times = []
        cached_times = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:
                start = time.perf_counter()
                prepare_cohort(cohort, data, profile, Path(cache), progress=False)
                first_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                prepare_cohort(cohort, data, profile, Path(cache), progress=False)
                cached_times.append(time.perf_counter() - start)
        first_s = statistics.median(first_times)
        cached_s = statistics.median(cached_times)
        print(
            f"| {name} | {bare_s:.3f} | {load_s:.3f} | {load_s / bare_s:.2f}x | {first_s:.3f} | {cached_s:.4f} | {first_s / cached_s:.0f}x |"
        )


if __name__ == "__main__":
    main()
