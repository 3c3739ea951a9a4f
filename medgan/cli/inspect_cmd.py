"""``medgan inspect``: geometry, intensity and warnings of one scan."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["inspect", "describe_volume"]


def describe_volume(volume: object) -> dict:
    """Return the JSON-ready facts ``inspect`` shows about a loaded Volume."""
    import numpy as np

    array = volume.array  # type: ignore[attr-defined]
    finite = array[np.isfinite(array)]
    return {
        "shape": list(array.shape),
        "spacing_mm": [round(value, 6) for value in volume.spacing],  # type: ignore[attr-defined]
        "affine": np.round(volume.affine, 6).tolist(),  # type: ignore[attr-defined]
        "orientation": volume.orientation,  # type: ignore[attr-defined]
        "dtype": str(array.dtype),
        "intensity_range": [float(finite.min()), float(finite.max())] if finite.size else None,
        "modality": volume.modality,  # type: ignore[attr-defined]
        "n_slices": int(array.shape[2]),
        "warnings": list(volume.warnings),  # type: ignore[attr-defined]
    }


@click.command(name="inspect")
@click.argument("path", type=click.Path(exists=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--modality", type=click.Choice(["CT", "MR"], case_sensitive=False), default=None,
              help="Modality of a NIfTI file (DICOM records its own, which must match).")
@click.option("--allow-identifying-series", is_flag=True,
              help="Also load localizers, Secondary Capture and burned-in-annotation images.")
@click.option("--nonfinite", type=click.Choice(["reject", "replace"]), default="reject", show_default=True,
              help="Reject NaN/Inf voxels, or replace them with 0 to see the rest of the scan.")
def inspect(path: Path, as_json: bool, modality: str | None, allow_identifying_series: bool, nonfinite: str) -> None:
    """Show shape, spacing, affine, orientation, intensity range and warnings of PATH.

    PATH is a NIfTI file (.nii, .nii.gz), a folder with one DICOM series, or one
    enhanced multi-frame DICOM file.  An invalid scan exits with status 2 and the
    reason on stderr.  The voxel array is the one training would use, after rescale
    and before preprocessing; shape and spacing are in NIfTI voxel order (i, j, k).
    """
    from medgan.data.reader import load_volume

    volume = load_volume(path, allow_identifying=allow_identifying_series, modality=modality, nonfinite=nonfinite)
    facts = describe_volume(volume)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    low_high = facts["intensity_range"]
    click.echo(f"scan:         {path}")
    click.echo(f"modality:     {facts['modality'] or 'unknown (NIfTI: pass --modality)'}")
    click.echo(f"shape:        {' x '.join(str(n) for n in facts['shape'])} (X, Y, Z), {facts['n_slices']} slices")
    click.echo(f"spacing:      {' x '.join(f'{value:g}' for value in facts['spacing_mm'])} mm")
    click.echo(f"orientation:  {facts['orientation']}")
    click.echo(f"dtype:        {facts['dtype']}")
    click.echo(f"intensity:    {low_high[0]:g} .. {low_high[1]:g}" if low_high else "intensity:    no finite voxel")
    click.echo("affine (voxel -> RAS+ mm):")
    for row in facts["affine"]:
        click.echo("  " + "  ".join(f"{value:12.6g}" for value in row))
    if facts["warnings"]:
        click.echo("warnings:")
        for message in facts["warnings"]:
            click.echo(f"  - {message}")
    else:
        click.echo("warnings:     none")
