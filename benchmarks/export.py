"""Export throughput against bare pydicom writes and reads of the same slices.

Measures, on a synthetic CT volume of ``--slices`` 32x32 slices:

* ``write series``: ``write_dicom_series`` (allow-listed attributes, fresh UIDs, range
  checks, atomic renames) versus the floor, ``pydicom.dcmwrite`` of a minimal dataset
  with the same pixels per slice;
* ``leak scan``: ``scan_folder`` over the written series (decoding every element and
  matching the identifier patterns) versus the floor, a bare ``pydicom.dcmread`` of
  every file.

Each timing is the median of ``--repeats`` runs after one warm-up.  Run from the
repository root:

    python benchmarks/export.py --slices 200 --repeats 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from medgan.export.dicom import SeriesOptions, write_dicom_series
from medgan.export.leaks import Identifiers, scan_folder


def _median_seconds(function: Callable[[], object], repeats: int) -> float:
    function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def _bare_write(volume: np.ndarray, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for k in range(volume.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = np.ascontiguousarray(volume[:, :, k].T).astype("<i2").tobytes()
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)


def _medgan_write(volume: np.ndarray, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    write_dicom_series(volume, np.eye(4), folder, SeriesOptions("CT"))


def _bare_read(folder: Path) -> None:
    for path in sorted(folder.glob("*.dcm")):
        pydicom.dcmread(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200, help="Slices of the benchmark volume.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per measurement.")
    arguments = parser.parse_args()

    volume = np.random.default_rng(0).integers(-1000, 1000, size=(32, 32, arguments.slices)).astype(np.float64)
    identifiers = Identifiers(
        names={"Doe^Johnathan"}, ids={"MRN4471829"}, birth_dates={"19610415"}, institutions={"Saint Example Hospital"}
    )
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        bare_write = _median_seconds(lambda: _bare_write(volume, root / "bare"), arguments.repeats)
        medgan_write = _median_seconds(lambda: _medgan_write(volume, root / "medgan"), arguments.repeats)
        bare_read = _median_seconds(lambda: _bare_read(root / "medgan"), arguments.repeats)
        scan = _median_seconds(lambda: scan_folder(root / "medgan", identifiers), arguments.repeats)

    print(f"| step ({arguments.slices} slices of 32x32) | baseline s | medgan s | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| write series vs bare dcmwrite | {bare_write:.3f} | {medgan_write:.3f} | {medgan_write / bare_write:.2f} |")
    print(f"| leak scan vs bare dcmread | {bare_read:.3f} | {scan:.3f} | {scan / bare_read:.2f} |")


if __name__ == "__main__":
    main()
