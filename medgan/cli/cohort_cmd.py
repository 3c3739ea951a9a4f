"""``medgan cohort``: simulated benchmark cohorts from the public ICBM152 template."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["cohort"]


@click.group()
def cohort() -> None:
    """Build simulated benchmark cohorts from public anatomy."""


@cohort.command("build")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="New folder for the cohort.")
@click.option("--n", "n_patients", required=True, type=click.IntRange(min=2), help="Number of patients.")
@click.option("--seed", required=True, type=click.IntRange(min=0), help="Seed; the same seed writes the same bytes.")
@click.option("--grid", type=click.Choice(["16", "32", "64", "128"]), default="32", show_default=True, help="Voxels per axis over a 192 mm cube.")
@click.option("--scans-per-patient", type=click.IntRange(1, 32), default=1, show_default=True, help="Scans per patient (same anatomy, new bias field and noise).")
@click.option("--canaries", "n_canaries", type=click.IntRange(min=0), default=0, show_default=True, help="Training patients that carry the canary pattern.")
@click.option("--lesion-fraction", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True, help="Share of patients per split with a lesion.")
@click.option("--lesion-contrast", type=float, default=1.0, show_default=True, help="Lesion intensity above tissue, as a fraction of white matter.")
@click.option("--holdout-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.2, show_default=True, help="Share of patients in the holdout split.")
@click.option("--noise-std", type=click.FloatRange(0.0, 1.0), default=0.03, show_default=True, help="Rician noise sigma as a fraction of white matter.")
@click.option("--no-masks", is_flag=True, help="Do not write the per-scan lesion masks.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes that render patients; the output does not depend on it.")
@click.option("--template-dir", type=click.Path(path_type=Path, file_okay=False), default=None, help="Folder of the ICBM152 2009a files (default: data_samples/templates).")
def build(
    out_dir: Path,
    n_patients: int,
    seed: int,
    grid: str,
    scans_per_patient: int,
    n_canaries: int,
    lesion_fraction: float,
    lesion_contrast: float,
    holdout_fraction: float,
    noise_std: float,
    no_masks: bool,
    workers: int,
    template_dir: Path | None,
) -> None:
    """Write a deterministic simulated cohort: NIfTI scans, manifest.csv and cohort.json.

    Every patient is the ICBM152 2009a template under a random deformation, with or
    without a white-matter lesion (label column 'lesion'), scanned with its own bias
    field, gain and noise.  Canary patients carry a checkerboard cube that
    medgan.cohort.detect_canary finds in generated scans.
    """
    from medgan.cohort import build_cohort

    manifest = build_cohort(
        out_dir,
        n_patients,
        seed,
        int(grid),
        scans_per_patient=scans_per_patient,
        n_canaries=n_canaries,
        template_dir=template_dir,
        workers=workers,
        lesion_fraction=lesion_fraction,
        lesion_contrast=lesion_contrast,
        holdout_fraction=holdout_fraction,
        noise_std=noise_std,
        write_masks=not no_masks,
    )
    click.echo(f"wrote {manifest}")
