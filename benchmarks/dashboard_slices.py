"""Benchmark: time per slider move in the scan viewer, cached volume against reloading it.

One 128^3 float32 volume (a noisy phantom, gzip NIfTI) is written to a temporary folder.
Each "slider move" renders one windowed axial slice at a new index as PNG bytes:

- ``reload per move``: what an uncached viewer does: hash the file, load and reorient
  the volume, compute the percentile window, slice and encode;
- ``medgan cached``: the dashboard's ``cached_slice_png``, whose volume and window are
  cached by file identity and content hash, so each move slices and encodes only.

Moves alternate between the two variants so machine load hits both alike; the table
gives medians and the ratio to the reload baseline.

Run:  python benchmarks/dashboard_slices.py --size 128 --moves 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboards"))

from ui_cache import cached_slice_png, cached_window, encode_png  # noqa: E402

from medgan.review.volumes import VolumeKey, load_display_volume, volume_key, window_bounds  # noqa: E402

PRESET = "auto (1-99th percentile)"


def _reload_move(path: Path, index: int) -> bytes:
    key = volume_key(path)
    # A fresh key per move defeats the digest memo, as a viewer without caching would.
    key = VolumeKey(path=key.path, size=key.size, mtime_ns=key.mtime_ns, sha256=key.sha256)
    volume = load_display_volume(key)
    low, high = window_bounds(volume.array, "CT", PRESET)
    return encode_png(volume, "axial", index, low, high)


def _cached_move(path: Path, index: int) -> bytes:
    key = volume_key(path)
    low, high = cached_window(key.path, key.size, key.mtime_ns, key.sha256, "CT", PRESET)
    return cached_slice_png(key.path, key.size, key.mtime_ns, key.sha256, "axial", index, low, high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="Edge length of the cubic test volume in voxels.")
    parser.add_argument("--moves", type=int, default=20, help="Slider moves timed per variant.")
    arguments = parser.parse_args()

    rng = np.random.default_rng(0)
    array = rng.normal(0.0, 50.0, size=(arguments.size,) * 3).astype(np.float32)  # (X, Y, Z)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "volume.nii.gz"
        nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))
        _cached_move(path, 0)  # warm-up: the first move loads the volume into the cache
        timings: dict[str, list[float]] = {"reload per move": [], "medgan cached": []}
        for move in range(1, arguments.moves + 1):
            index = move % arguments.size
            for name, function in (("reload per move", _reload_move), ("medgan cached", _cached_move)):
                start = time.perf_counter()
                function(path, index)
                timings[name].append(time.perf_counter() - start)

    baseline = statistics.median(timings["reload per move"])
    print(f"| variant ({arguments.size}^3, {arguments.moves} moves) | median ms per move | ratio to reload |")
    print("| --- | ---: | ---: |")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1000:.1f} | {median / baseline:.3f} |")


if __name__ == "__main__":
    main()
