"""Benchmark runner: ``python benchmarks/run.py NAME [NAME ...]``.

Each benchmark prints a markdown table with its machine and command, ready to paste
into docs/benchmarks.md.  Speed claims are ratios against a baseline measured in the
same run, so they hold across machines better than absolute seconds.

Benchmarks:
    quickstart     wall time and peak memory per pipeline stage of pipelines/quickstart.yaml
    ingest         benchmarks/ingest.py (loader vs bare pydicom/nibabel read, cached and not)
    dp_step        benchmarks/dp_step.py (DP discriminator step vs non-DP and plain Opacus)
    memorization   benchmarks/memorization.py (two-stage search vs one matrix product)
    export         benchmarks/export.py (DICOM series writer and leak scan vs bare pydicom)
    dashboard_slices  benchmarks/dashboard_slices.py (cached slice rendering vs reloading)

The privacy-utility curve has its own runner: benchmarks/privacy_utility/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "ingest": REPO / "benchmarks" / "ingest.py",
    "dp_step": REPO / "benchmarks" / "dp_step.py",
    "memorization": REPO / "benchmarks" / "memorization.py",
    "export": REPO / "benchmarks" / "export.py",
    "dashboard_slices": REPO / "benchmarks" / "dashboard_slices.py",
}


def machine_line() -> str:
    """Describe the machine: CPU model, core count, memory and torch build."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}, torch {torch.__version__}"


def bench_quickstart(extra: list[str]) -> str:
    """Run the quickstart pipeline once and tabulate its stages."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "run"
        command = [sys.executable, "-m", "medgan", "run", "pipelines/quickstart.yaml", "--out", str(out), "--no-progress",
                   "--set", f"privacy.ledger_dir={Path(scratch) / 'ledger'}", *extra]
        subprocess.run(command, cwd=REPO, check=True)
        report = json.loads((out / "report.json").read_text())
    rows = ["| stage | wall time (s) | peak RSS (MiB) |", "| --- | ---: | ---: |"]
    total = 0.0
    for name, values in report["stages"].items():
        rows.append(f"| {name} | {values['wall_s']:.1f} | {values['peak_rss_mb']:.0f} |")
        total += values["wall_s"]
    rows.append(f"| total | {total:.1f} | |")
    shown = " ".join(["medgan run pipelines/quickstart.yaml", *extra])
    return f"### quickstart\n\nMachine: {machine_line()}\n\nCommand: `{shown}`\n\n" + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=["quickstart", *SCRIPTS, "all"])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="Pipeline override for quickstart.")
    args = parser.parse_args()
    names = ["quickstart", *SCRIPTS] if "all" in args.names else args.names
    for name in names:
        if name == "quickstart":
            extra = [item for override in args.overrides for item in ("--set", override)]
            print(bench_quickstart(extra))
        else:
            subprocess.run([sys.executable, str(SCRIPTS[name])], cwd=REPO, check=True)


if __name__ == "__main__":
    main()
