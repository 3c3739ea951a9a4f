"""Benchmark: one DP discriminator step against the same non-DP step and a plain Opacus baseline.

Four variants on the same discriminator, the same batch (B real + B fake volumes) and
the same Adam optimizer:

- ``non-DP``: one backward over the mean pair loss, Adam step;
- ``medgan DP``: ``DPGANTrainer.discriminator_step`` with the default engine (per-pair
  gradients by torch.func vmap, real/fake pairs clipped together, noise, Adam step);
- ``medgan DP (hooks engine)``: the same step with Opacus' GradSampleModule hooks
  computing the per-row gradients, summed pairwise before clipping;
- ``Opacus hooks``: the plain recipe (GradSampleModule in hooks mode and DPOptimizer,
  every row clipped on its own), as a user of ``PrivacyEngine.make_private`` would get.

Steps are warm (after warm-up steps) and interleaved (non-DP, medgan, Opacus, repeat), so
machine load hits all variants alike.  The table gives medians and ratios to non-DP.  Peak
memory is measured in a fresh subprocess per variant (CPU: growth of the peak resident
set over the process' state after building the model; CUDA: peak allocated).

Run:  python benchmarks/dp_step.py --grids 32 64 --steps 20 --batch 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings

import torch

from medgan.models import ModelConfig, build_discriminator, build_generator
from medgan.training.dp_gan import DPGANTrainer, DPSettings, LabelPrior
from medgan.training.losses import discriminator_loss_terms

VARIANTS = ("non-DP", "medgan DP", "medgan DP (hooks engine)", "Opacus hooks")


class _OpacusBaseline:
    """The plain Opacus recipe: every row of the 2B batch clipped separately."""

    def __init__(self, discriminator, batch_size: int) -> None:
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        self.module = GradSampleModule(discriminator, loss_reduction="mean")
        self.optimizer = DPOptimizer(
            torch.optim.Adam(self.module.parameters(), lr=2e-4, betas=(0.5, 0.999)),
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            expected_batch_size=2 * batch_size,
            loss_reduction="mean",
        )

    def step(self, real, real_labels, fake, fake_labels) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        n = real.shape[0]
        scores = self.module(torch.cat([real, fake]), torch.cat([real_labels, fake_labels]))
        discriminator_loss_terms("hinge", scores[:n], scores[n:]).mean().backward()
        self.optimizer.step()


def _build(variant: str, grid: int, batch: int, device: torch.device):
    torch.manual_seed(0)
    config = ModelConfig()
    discriminator = build_discriminator(config, grid, [2], dp=variant != "non-DP")
    if variant == "Opacus hooks":
        return _OpacusBaseline(discriminator.to(device), batch).step
    settings = None
    if variant != "non-DP":
        engine = "hooks" if "hooks" in variant else "vmap"
        settings = DPSettings(1.0, 1.0, float(batch), engine)
    trainer = DPGANTrainer(
        build_generator(config, grid, [2]),
        discriminator,
        loss="hinge",
        lr_generator=2e-4,
        lr_discriminator=2e-4,
        dp=settings,
        noise_generator=torch.Generator(device=device).manual_seed(1),
        latent_generator=torch.Generator().manual_seed(2),
        prior=LabelPrior([torch.ones(2)]),
        latent_dim=config.latent_dim,
        device=device,
    )
    return trainer.discriminator_step


def _batch(grid: int, batch: int, device: torch.device):
    generator = torch.Generator().manual_seed(3)
    volumes = torch.rand(2 * batch, 1, grid, grid, grid, generator=generator) * 2 - 1
    labels = torch.randint(0, 2, (2 * batch, 1), generator=generator)
    return volumes[:batch].to(device), labels[:batch].to(device), volumes[batch:].to(device), labels[batch:].to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(grid: int, batch: int, steps: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Median-ready step times of the three variants, interleaved."""
    data = _batch(grid, batch, device)
    functions = {variant: _build(variant, grid, batch, device) for variant in VARIANTS}
    for _ in range(warmup):
        for function in functions.values():
            function(*data)
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(steps):
        for variant, function in functions.items():
            _sync(device)
            start = time.perf_counter()
            function(*data)
            _sync(device)
            times[variant].append(time.perf_counter() - start)
    return times


def peak_memory_mb(variant: str, grid: int, batch: int, device: torch.device) -> float:
    """Peak memory of a few steps of ``variant`` in this process (meant for a fresh subprocess)."""
    data = _batch(grid, batch, device)
    function = _build(variant, grid, batch, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        for _ in range(3):
            function(*data)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    # ru_maxrss includes the peak of importing torch; sample the resident set instead.
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[1]) * page

    base = rss()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.0005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    for _ in range(3):
        function(*data)
    done.set()
    thread.join()
    return (max(peak[0], rss()) - base) / 2**20


def _memory_in_subprocess(variant: str, grid: int, batch: int, device: str) -> float:
    command = [sys.executable, __file__, "--memory-probe", variant, "--grids", str(grid), "--batch", str(batch), "--device", device]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ}).stdout
    return float(json.loads(output.strip().splitlines()[-1])["peak_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=20, help="interleaved timed steps per variant (>= 20 for the table)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4, help="real volumes per step (plus as many fake)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    device = torch.device(args.device)
    if args.memory_probe:
        print(json.dumps({"peak_mb": peak_memory_mb(args.memory_probe, args.grids[0], args.batch, device)}))
        return

    print(f"device: {device}, threads: {torch.get_num_threads()}, batch: {args.batch} real + {args.batch} fake, "
          f"{args.steps} interleaved steps after {args.warmup} warm-up steps\n")
    print("| grid | variant | median step (s) | time vs non-DP | peak memory (MiB) | memory vs non-DP | time vs Opacus hooks |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for grid in args.grids:
        times = time_steps(grid, args.batch, args.steps, args.warmup, device)
        medians = {variant: statistics.median(values) for variant, values in times.items()}
        memory = {variant: _memory_in_subprocess(variant, grid, args.batch, args.device) for variant in VARIANTS}
        for variant in VARIANTS:
            print(
                f"| {grid}^3 | {variant} | {medians[variant]:.3f} | {medians[variant] / medians['non-DP']:.2f}x | "
                f"{memory[variant]:.0f} | {memory[variant] / max(memory['non-DP'], 1e-9):.2f}x | "
                f"{medians[variant] / medians['Opacus hooks']:.2f}x |"
            )


if __name__ == "__main__":
    main()
