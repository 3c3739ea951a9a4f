"""``medgan run``: the whole pipeline from a YAML file."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click

from medgan.errors import ConfigError

__all__ = ["run"]


def _default_out(name: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}-{stamp}"


def _print_summary(report: dict, out: Path) -> None:
    privacy = report.get("privacy", {})
    click.echo("")
    click.echo(f"run folder: {out}")
    if not privacy.get("private", False):
        click.secho("NOT PRIVATE: trained without differential privacy; samples must not leave the site.", fg="red", bold=True)
    else:
        epsilon = privacy.get("epsilon")
        click.echo(
            f"privacy: epsilon={epsilon:.3g} delta={privacy.get('delta'):.2g} ({privacy.get('accountant')}), "
            f"noise multiplier {privacy.get('noise_multiplier'):.3g}, sample rate {privacy.get('sample_rate'):.3g}, "
            f"{privacy.get('steps')} steps, noise-to-signal {privacy.get('noise_to_signal'):.3g}, unit: patient"
        )
    for warning in privacy.get("warnings", []):
        click.secho(f"WARNING: {warning}", fg="yellow", bold=True)
    flagged = report.get("memorization", {}).get("flagged", [])
    click.echo(f"memorization: {len(flagged)} synthetic scan(s) flagged as copies")
    export = report.get("export", {})
    click.echo(f"export (staging): {len(export.get('written', []))} written, {len(export.get('left_out', []))} left out")
    click.echo(f"report: {out / 'report.html'}")


@click.command(name="run")
@click.argument("pipeline", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder to create (default: runs/<name>-<timestamp>).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set train.steps=20 (repeatable).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars (log lines remain).")
def run(pipeline: Path, out: Path | None, overrides: tuple[str, ...], no_progress: bool) -> None:
    """Run PIPELINE (a YAML file): ingest, train, generate, evaluate, export.

    The run folder gets the resolved config, the generator, synthetic/ NIfTI volumes,
    report.json, report.html and a staging export/. Real paths and training state stay
    in its private/ folder, which must never leave the site.
    """
    from medgan.config import load_pipeline
    from medgan.pipeline.runner import run_pipeline

    config = load_pipeline(pipeline, list(overrides))
    out = out if out is not None else _default_out(config.name)
    if (out / "report.json").exists():
        raise ConfigError(f"run folder {out} already contains a finished run (report.json exists); choose another --out")
    report = run_pipeline(config, out, progress=not no_progress)
    _print_summary(report, out)
