"""The ``medgan`` command line.

Subcommands live in their own modules and are imported only when invoked, so
``medgan --help`` does not pay for importing torch, MONAI or Streamlit.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from medgan import __version__
from medgan._logging import configure_logging
from medgan.errors import MedganError

__all__ = ["cli", "main"]

logger = logging.getLogger(__name__)

# name -> (module, attribute, one-line help shown by `medgan --help`)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("medgan.cli.run_cmd", "run", "Run a pipeline: ingest, train, generate, evaluate, export."),
    "inspect": ("medgan.cli.inspect_cmd", "inspect", "Show geometry, intensity and warnings of one scan."),
    "validate": ("medgan.cli.validate_cmd", "validate", "Check every scan of a cohort before training."),
    "train": ("medgan.cli.train_cmd", "train", "Train the conditional GAN of a pipeline (DP or not)."),
    "generate": ("medgan.cli.generate_cmd", "generate", "Sample synthetic volumes from a run or a release bundle."),
    "evaluate": ("medgan.cli.evaluate_cmd", "evaluate", "Measure fidelity, memorization and attack risk of a synthetic set."),
    "export": ("medgan.cli.export_cmd", "export", "Export a run's synthetic scans as NIfTI or DICOM with a dataset card."),
    "privacy": ("medgan.cli.privacy_cmd", "privacy", "Compute epsilon or the noise multiplier for a planned training."),
    "dashboard": ("medgan.cli.dashboard_cmd", "dashboard", "Start the reviewer dashboard on a runs folder."),
    "reviewers": ("medgan.cli.review_cmd", "reviewers", "Manage the local reviewer registry."),
    "audit": ("medgan.cli.review_cmd", "audit", "Verify a run's audit log."),
    "cohort": ("medgan.cli.cohort_cmd", "cohort", "Build simulated benchmark cohorts from public anatomy."),
    "scan-leaks": ("medgan.cli.export_cmd", "scan_leaks", "Scan any folder for identifiers of a source cohort."),
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module_name, attribute, _ = _COMMANDS[cmd_name]
        module = importlib.import_module(module_name)
        return getattr(module, attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except MedganError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="medgan")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def cli(verbose: bool) -> None:
    """medgan: private synthetic 3D medical images, from scans to a reviewed release."""
    configure_logging(verbose)


def main() -> None:
    """Entry point for ``python -m medgan``."""
    cli()
