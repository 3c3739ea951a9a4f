"""``medgan export`` and ``medgan scan-leaks``."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["export", "scan_leaks"]


@click.command(name="export")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="Run folder to export.")
@click.option("--format", "fmt", type=click.Choice(["nifti", "dicom", "dicom-enhanced"]), default="nifti", show_default=True,
              help="Output format: NIfTI files, one single-frame DICOM series per volume, or one enhanced multi-frame "
                   "DICOM file per volume (needs highdicom).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Destination folder [default: RUN/export/FORMAT, or RUN/release/FORMAT with --approved-only].")
@click.option("--approved-only", is_flag=True,
              help="Release: export only scans approved for the current evaluation; a flagged scan blocks the release.")
@click.option("--drop-flagged", is_flag=True, default=None,
              help="With --approved-only: leave flagged scans out instead of blocking (recorded on the dataset card).")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the generator release bundle (safetensors weights, config, card) to this new folder.")
@click.option("--allow-non-private", is_flag=True, help="Allow a bundle of a generator trained without differential privacy.")
def export(
    run_dir: Path,
    fmt: str,
    out_dir: Path | None,
    approved_only: bool,
    drop_flagged: bool | None,
    bundle_dir: Path | None,
    allow_non_private: bool,
) -> None:
    """Export a run's synthetic scans with a dataset card, after a leak scan."""
    from medgan.export import export_run
    from medgan.export.bundle import write_bundle

    summary = export_run(run_dir, fmt=fmt, out_dir=out_dir, approved_only=approved_only, staging=not approved_only, drop_flagged=drop_flagged)
    kind = "release" if approved_only else "staging export (not reviewed, not for release)"
    click.echo(f"{kind}: wrote {len(summary.written)} scan(s) to {summary.out_dir}, left out {len(summary.left_out)}")
    for item in summary.left_out:
        click.echo(f"  left out {item['synthetic']}: {item['reason']}")
    for warning in summary.warnings:
        click.secho(f"warning: {warning}", fg="yellow")
    click.echo(f"dataset card: {summary.card_path}")
    if bundle_dir is not None:
        written = write_bundle(run_dir, bundle_dir, allow_non_private=allow_non_private)
        click.echo(f"release bundle: {written} (load with: medgan generate --bundle {written} --out DIR)")


@click.command(name="scan-leaks")
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="Run whose private pseudonym map names the source cohort's identifiers.")
def scan_leaks(folder: Path, run_dir: Path) -> None:
    """Scan FOLDER for identifiers of a run's source cohort; exit 2 if any is found."""
    from medgan.errors import LeakError
    from medgan.export.leaks import identifiers_from_run, scan_folder

    findings = scan_folder(folder, identifiers_from_run(run_dir))
    for finding in findings:
        click.echo(str(finding))
    if findings:
        raise LeakError(f"{len(findings)} identifier(s) of the source cohort found in {folder}")
    click.echo(f"no identifiers of the source cohort found in {folder}")
