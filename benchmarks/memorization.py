"""Benchmark the two-stage copy search against one matrix product of the flattened volumes.

The floor is the cheapest possible all-pairs comparison: one product of the
``(Q, G^3)`` and ``(R, G^3)`` matrices, with no flip, shift or alignment. The copy
search (coarse retrieval with flips and Fourier magnitudes, then FFT alignment of the
top candidates) is reported as a ratio to that floor, measured in the same run.

Run: ``python benchmarks/memorization.py --count 1000 --grid 64 --threads 2``
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_volumes(count: int, grid: int, seed: int):
    """Return ``(count, 1, grid, grid, grid)`` smooth random head-like volumes in [-1, 1]."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    axis = torch.linspace(-1, 1, grid)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    volumes = torch.empty(count, 1, grid, grid, grid)
    for start in range(0, count, 50):
        size = min(50, count - start)
        coarse = torch.randn(size, 1, 6, 6, 6, generator=generator)
        texture = F.interpolate(coarse, size=(grid,) * 3, mode="trilinear", align_corners=False)
        radii = 0.5 + 0.2 * torch.rand(size, 3, generator=generator)
        inside = (x / radii[:, 0, None, None, None]) ** 2 + (y / radii[:, 1, None, None, None]) ** 2 + (z / radii[:, 2, None, None, None]) ** 2 <= 1
        volumes[start : start + size] = torch.where(inside[:, None], (0.2 + 0.3 * texture).clamp(-1, 1), torch.tensor(-1.0))
    return volumes.numpy()


def main() -> None:
    import torch

    from medgan.evaluation.memorization import SearchSettings, nearest_references

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="synthetic and training volumes each")
    parser.add_argument("--grid", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=SearchSettings().candidates, help="candidates per retrieval kind")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = make_volumes(args.count, args.grid, seed=0)
    synthetic = make_volumes(args.count, args.grid, seed=1)
    planted = min(10, args.count)
    synthetic[:planted] = np.roll(train[:planted], 2, axis=-1)[..., ::-1, :, :]  # shifted and flipped copies

    start, cpu_start = time.perf_counter(), time.process_time()
    flat_train = torch.from_numpy(train.reshape(args.count, -1))  # (R, G^3)
    flat_synthetic = torch.from_numpy(synthetic.reshape(args.count, -1))  # (Q, G^3)
    product = flat_synthetic @ flat_train.T
    floor, floor_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    del product

    start, cpu_start = time.perf_counter(), time.process_time()
    match = nearest_references(synthetic, train, SearchSettings(candidates=args.candidates))
    search, search_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    found = int((match.index[:planted] == np.arange(planted)).sum())

    # CPU seconds are reported too: on a shared machine wall time includes waiting for a core.
    print("| volumes | grid | threads | floor wall (s) | floor CPU (s) | search wall (s) | search CPU (s) | ratio (wall) | ratio (CPU) | planted copies found |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.count} x {args.count} | {args.grid} | {args.threads} | {floor:.2f} | {floor_cpu:.2f} | {search:.2f} | "
        f"{search_cpu:.2f} | {search / floor:.2f} | {search_cpu / max(floor_cpu, 1e-9):.2f} | {found}/{planted} |"
    )


if __name__ == "__main__":
    main()
