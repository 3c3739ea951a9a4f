"""``medgan train``: ingest a pipeline's cohort and train its GAN into a run folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medgan.errors import ConfigError

if TYPE_CHECKING:
    from medgan.runs import RunLayout

__all__ = ["train"]


def _join_process_group() -> None:
    """Initialise torch.distributed from torchrun's environment when it starts several processes."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def _reject_finished_run(out: Path, layout: RunLayout) -> None:
    """Reject resuming a run whose training finished, before anything in it is rewritten.

    The generator is saved only when training ends, so its weights file marks a finished
    run.  Resuming one would save the generator again and rewrite config.yaml and
    report.json without the evaluation sections, so a later export card would name a
    generator that was never evaluated.

    Raises:
        ConfigError: ``layout`` contains a saved generator.
    """
    from medgan.training.checkpoint import load_checkpoint

    if not (layout.generator / "generator.safetensors").is_file():
        return
    state = load_checkpoint(layout.checkpoints)
    step = state.get("step") if isinstance(state, dict) else None
    where = f" at step {step}" if step is not None else ""
    raise ConfigError(f"run {out} already finished training{where}; nothing to resume. Start a new run folder.")


@click.command(name="train")
@click.argument("pipeline", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder to create, or to continue with --resume.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set train.steps=20 (repeatable).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last checkpoint, with the configuration it was started with.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar (log lines remain).")
def train(pipeline: Path | None, out: Path, overrides: tuple[str, ...], resume: bool, no_progress: bool) -> None:
    """Train the conditional GAN of PIPELINE (a YAML file) into the run folder --out.

    Writes generator/ (the only weights that may be released) and report.json with the
    privacy section. The discriminator, checkpoints, losses and sample images stay in
    the run's private/ folder. A killed run continues with --resume; in seeded mode
    the result is bit-identical to an uninterrupted run.

    Under torchrun (WORLD_SIZE > 1) each process joins a gloo (CPU) or NCCL (CUDA)
    process group and trains a share of each step's patients; rank 0 writes the
    checkpoints, the step log and the generator.
    """
    import yaml

    from medgan.config import PipelineConfig, load_pipeline
    from medgan.pipeline.runner import run_pipeline
    from medgan.runs import RunLayout

    layout = RunLayout(out.resolve())
    has_checkpoint = layout.checkpoints.is_dir() and any(layout.checkpoints.glob("*"))
    if resume:
        if not layout.private_config.is_file():
            raise ConfigError(f"--resume: {out} has no {layout.private_config.name}; it is not a started run folder")
        if overrides:
            raise ConfigError("--resume continues with the run's recorded configuration; --set is not allowed")
        config = PipelineConfig.model_validate(yaml.safe_load(layout.private_config.read_text(encoding="utf-8")))
        if pipeline is not None:
            given = load_pipeline(pipeline)
            if given.model_dump(mode="json") != config.model_dump(mode="json"):
                raise ConfigError(
                    f"--resume: {pipeline} differs from the configuration {out} was started with; "
                    "omit PIPELINE to continue with the recorded one"
                )
        _reject_finished_run(out, layout)
    else:
        if pipeline is None:
            raise ConfigError("give a PIPELINE file, or --resume with --out pointing at a started run")
        if has_checkpoint:
            raise ConfigError(f"{out} already contains a training checkpoint; pass --resume to continue it or choose a new --out")
        config = load_pipeline(pipeline, list(overrides))
    _join_process_group()
    report = run_pipeline(config, out, progress=not no_progress, stages=("ingest", "train"))
    if int(os.environ.get("RANK", "0")) != 0:
        return
    privacy = report.get("privacy", {})
    training = report.get("training", {})
    steps = training.get("steps") or 0
    click.echo(f"run folder: {out}")
    click.echo(f"generator: {layout.generator}")
    click.echo(f"training: {steps} steps in {training.get('wall_s', 0):.1f} s on {training.get('device')}")
    if not privacy.get("private", False):
        click.secho("NOT PRIVATE: trained without differential privacy; the generator must not leave the site.", fg="red", bold=True)
    else:
        click.echo(
            f"privacy: epsilon={privacy.get('epsilon'):.3g} at delta={privacy.get('delta'):.2g} "
            f"({privacy.get('accountant')}), unit: patient, {privacy.get('n_patients')} patients"
        )
    for warning in privacy.get("warnings", []):
        click.secho(f"WARNING: {warning}", fg="yellow", bold=True)
