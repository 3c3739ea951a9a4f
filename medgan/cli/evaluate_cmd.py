"""``medgan evaluate``: fidelity, memorization, attack and utility of any synthetic set.

Works on plain folders of NIfTI files or DICOM series, and on manifest CSVs, so sets
made by medgan and by any other generator are judged by the same code as the
pipeline's evaluate stage.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from medgan.errors import ConfigError, InputError

__all__ = ["evaluate"]

logger = logging.getLogger(__name__)


def _read_synthetic_labels(folder: Path) -> dict[str, dict[str, str]]:
    """Return ``{file name: labels}`` from a medgan ``index.json`` in ``folder``, or {}."""
    from medgan.data.discover import read_synthetic_index

    if not folder.is_dir():
        return {}
    return {
        name: {str(key): str(value) for key, value in (entry.get("labels") or {}).items()}
        for name, entry in read_synthetic_index(folder).items()
    }


def _select_split(cohort: Any, source: Path, split: str) -> Any:
    """Keep the rows of ``split`` when ``source`` is a manifest; a folder keeps everything."""
    if not (source.is_file() and source.suffix.lower() == ".csv"):
        return cohort
    kept = [scan for scan in cohort.scans if scan.split == split]
    if not kept:
        raise InputError(f"manifest {source} has no rows with split {split!r}; a manifest given to --{split} contributes its {split} rows")
    return type(cohort)(scans=kept, label_names=cohort.label_names, manifest_sha256=cohort.manifest_sha256, label_values=cohort.label_values)


@click.command(name="evaluate")
@click.option("--train", "train_source", required=True, type=click.Path(path_type=Path),
              help="Training scans: a folder of NIfTI files / DICOM series, or a manifest CSV (its train rows).")
@click.option("--holdout", "holdout_source", required=True, type=click.Path(path_type=Path),
              help="Real scans the generator never saw: a folder or a manifest CSV (its holdout rows).")
@click.option("--synthetic", "synthetic_source", required=True, type=click.Path(path_type=Path),
              help="Folder of synthetic scans, NIfTI files or DICOM series (a medgan index.json there supplies labels).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("evaluation"), show_default=True,
              help="Output folder: evaluation.json, evaluation.html and private/ (never share private/).")
@click.option("--modality", type=click.Choice(["CT", "MR"], case_sensitive=False), default=None,
              help="Modality of NIfTI files found in folders (DICOM and manifests carry their own).")
@click.option("--pipeline", "pipeline_file", type=click.Path(path_type=Path), default=None,
              help="Pipeline YAML whose preprocess and evaluation sections to use (the profile the generator was trained with).")
@click.option("--grid", type=int, default=None, help="Model grid edge in voxels (overrides the profile).")
@click.option("--spacing-mm", type=float, default=None, help="Isotropic voxel spacing in mm (overrides the profile).")
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="Feature extractor weights (safetensors of medgan's encoder or a MedicalNet-layout 3D ResNet); default: the shipped encoder.")
@click.option("--bootstrap", type=int, default=None, help="Bootstrap resamples for confidence intervals.")
@click.option("--seed", type=int, default=None, help="Seed of bootstrap, pair sampling and the holdout split.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def evaluate(
    train_source: Path,
    holdout_source: Path,
    synthetic_source: Path,
    out_dir: Path,
    modality: str | None,
    pipeline_file: Path | None,
    grid: int | None,
    spacing_mm: float | None,
    weights: Path | None,
    bootstrap: int | None,
    seed: int | None,
    no_progress: bool,
) -> None:
    """Measure how close a synthetic set is to real scans and whether it copies any of them.

    All three sets are preprocessed with one profile. evaluation.json and
    evaluation.html name scans by pseudonymous ids only; the map from ids to files, the
    preprocessed-volume cache and nearest-training previews go to OUT/private/. The
    exit status is 3 when a synthetic scan is flagged as a copy of a training scan.
    """
    from pydantic import ValidationError

    from medgan.config import load_pipeline
    from medgan.data.config import DataConfig, PreprocessConfig
    from medgan.data.dataset import PreparedScan, prepare_cohort
    from medgan.data.discover import cohort_from_path
    from medgan.data.pseudonym import Pseudonymizer, load_or_create_salt
    from medgan.evaluation import EvaluationConfig, evaluate_sets
    from medgan.evaluation.html import render_evaluation_page
    from medgan.fileio import write_json_atomic, write_text_atomic
    from medgan.runs import RunLayout

    if pipeline_file is not None:
        pipeline = load_pipeline(pipeline_file)
        preprocess, config, data = pipeline.preprocess, pipeline.evaluation, pipeline.data
    else:
        preprocess, config = PreprocessConfig(), EvaluationConfig()
        data = DataConfig(manifest=Path("unused.csv"))
    updates = {key: value for key, value in (("extractor_weights", weights), ("n_bootstrap", bootstrap), ("seed", seed)) if value is not None}
    profile = {key: value for key, value in (("grid", grid), ("spacing_mm", spacing_mm)) if value is not None}
    try:
        config = EvaluationConfig.model_validate({**config.model_dump(), **updates})
        preprocess = PreprocessConfig.model_validate({**preprocess.model_dump(), **profile})
    except ValidationError as error:
        problem = error.errors()[0]
        raise ConfigError(f"invalid evaluate option {problem['loc'][0]}={problem.get('input')!r}: {problem['msg']}") from None
    for option, source in (("--train", train_source), ("--holdout", holdout_source), ("--synthetic", synthetic_source)):
        if not source.exists():
            raise InputError(f"{option} {source} does not exist; pass a folder of scans or a manifest CSV")

    layout = RunLayout(out_dir)
    layout.private.mkdir(parents=True, exist_ok=True)
    pseudonymizer = Pseudonymizer(load_or_create_salt(layout.salt))
    cohorts = {
        "train": _select_split(cohort_from_path(train_source, pseudonymizer, modality), train_source, "train"),
        "holdout": _select_split(cohort_from_path(holdout_source, pseudonymizer, modality), holdout_source, "holdout"),
        "synthetic": cohort_from_path(synthetic_source, pseudonymizer, modality),
    }
    overlap = {scan.scan_id for scan in cohorts["train"].scans} & {scan.scan_id for scan in cohorts["holdout"].scans}
    if overlap:
        raise InputError(f"{len(overlap)} scan(s) appear in both --train and --holdout; holdout scans must be unseen by the generator")
    prepared = {
        name: prepare_cohort(cohort, data, preprocess, layout.private / "cache", progress=not no_progress).scans
        for name, cohort in cohorts.items()
    }
    # Synthetic scans are named by their file, as the report contract requires; they are not patients.
    labels = _read_synthetic_labels(synthetic_source)
    synthetic = []
    for record, scan in zip(cohorts["synthetic"].scans, prepared["synthetic"]):
        name = record.source.relative_to(synthetic_source.resolve()).as_posix() if synthetic_source.is_dir() else record.source.name
        synthetic.append(
            PreparedScan(scan_id=name, patient_id="", split="synthetic", labels=labels.get(name, {}), modality=scan.modality, array=scan.array)
        )
    id_map = {scan.scan_id: str(scan.source) for name in ("train", "holdout") for scan in cohorts[name].scans}
    write_json_atomic(layout.id_map, id_map)

    result = evaluate_sets(
        prepared["train"], prepared["holdout"], synthetic, config, private_dir=layout.private_evaluation, progress=not no_progress
    )
    result["evaluation"]["profile"] = {"grid": preprocess.grid, "spacing_mm": preprocess.spacing_mm}
    write_json_atomic(out_dir / "evaluation.json", result)
    write_text_atomic(out_dir / "evaluation.html", render_evaluation_page(result))
    flagged = result["memorization"]["flagged"]
    auc = result["attack"]["mia_auc"].get("value")
    click.echo(f"wrote {out_dir / 'evaluation.json'} and {out_dir / 'evaluation.html'}")
    click.echo(f"copies flagged: {len(flagged)} of {len(synthetic)} synthetic scans")
    click.echo(f"membership attack AUC: {auc:.3f}" if auc is not None else "membership attack AUC: not computable (too few holdout scans)")
    if flagged:
        click.echo("at least one synthetic scan copies a training scan; by default this blocks release", err=True)
        raise SystemExit(3)
