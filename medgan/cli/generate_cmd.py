"""``medgan generate``: sample synthetic volumes from a run's generator or a release bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from medgan.errors import ConfigError

__all__ = ["generate"]


@click.command(name="generate")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Run folder; its generator/ is used.")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder with generator.safetensors and generator.json (a release bundle).")
@click.option("--n", "n_per_condition", type=click.IntRange(min=1), default=4, show_default=True,
              help="Volumes per label combination.")
@click.option("--seed", type=int, default=1234, show_default=True, help="Seed of the latent vectors.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for syn-*.nii.gz and index.json (must be new or empty).")
def generate(run_dir: Path | None, bundle_dir: Path | None, n_per_condition: int, seed: int, out: Path) -> None:
    """Write synthetic NIfTI volumes for every label combination, and index.json."""
    from medgan.training.generate import generate_volumes

    if (run_dir is None) == (bundle_dir is None):
        raise ConfigError("pass either --run DIR or --bundle DIR, not both and not neither")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} is not empty; choose a new folder so no earlier synthetic set is overwritten")
    source = run_dir / "generator" if run_dir is not None else bundle_dir
    index = generate_volumes(source, out, n_per_condition=n_per_condition, seed=seed)
    meta = json.loads((source / "generator.json").read_text(encoding="utf-8"))
    privacy = meta.get("privacy") or {}
    click.echo(f"wrote {len(index)} volumes and index.json to {out}")
    if not privacy.get("private", False):
        click.secho("NOT PRIVATE: this generator was trained without differential privacy.", fg="red", bold=True)
    else:
        click.echo(f"generator privacy: epsilon={privacy.get('epsilon'):.3g} at delta={privacy.get('delta'):.2g}, unit: patient")
