"""The pipeline: ingest -> train -> generate -> evaluate -> export, into one run folder.

Each stage is a thin call into its subpackage. This module wires them together,
measures them, keeps real identifiers in the private part of the run and writes the
report.

A failing stage raises. A run folder that this call created and that has no training
checkpoint yet is then removed. Otherwise the files stay, so the run can be inspected
and training resumes from its last checkpoint on a rerun.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medgan import __version__
from medgan.config import PipelineConfig, public_config
from medgan.data.manifest import Cohort, load_manifest
from medgan.data.pseudonym import Pseudonymizer, load_or_create_salt
from medgan.errors import ConfigError, InputError
from medgan.fileio import write_json_atomic, write_text_atomic
from medgan.pipeline.resources import measure_stage
from medgan.runs import RunLayout

__all__ = ["PipelineState", "run_pipeline", "STAGES"]

logger = logging.getLogger(__name__)

STAGES = ("ingest", "train", "generate", "evaluate", "export")


@dataclass
class PipelineState:
    """Intermediate results that the stages pass to each other within one run."""

    config: PipelineConfig
    layout: RunLayout
    progress: bool = True
    cohort: Cohort | None = None
    prepared: Any = None  # medgan.data.dataset.PreparedCohort
    train_result: Any = None  # medgan.training.TrainResult
    synthetic_index: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _stage_ingest(state: PipelineState) -> None:
    from medgan.data.dataset import prepare_cohort

    config, layout = state.config, state.layout
    pseudonymizer = Pseudonymizer(load_or_create_salt(layout.salt))
    cohort = load_manifest(config.data.manifest, pseudonymizer, holdout_fraction=config.data.holdout_fraction)
    _preflight(config, cohort)
    write_json_atomic(layout.id_map, cohort.id_map())
    cache_dir = config.data.cache_dir or (layout.private / "cache")
    prepared = prepare_cohort(cohort, config.data, config.preprocess, Path(cache_dir), progress=state.progress)
    state.cohort, state.prepared = cohort, prepared
    n_train = len(cohort.patients("train"))
    state.report["data"] = {
        "n_patients": len(cohort.patients()),
        "n_scans": len(cohort.scans),
        "n_train_patients": n_train,
        "n_train_scans": len(cohort.split("train")),
        "n_holdout_patients": len(cohort.patients("holdout")),
        "n_holdout_scans": len(cohort.split("holdout")),
        "labels": cohort.label_values,
        "profile": getattr(prepared, "profile", None) or config.preprocess.model_dump(mode="json"),
    }
    logger.info(
        "ingest: %d scans of %d patients (%d train, %d holdout patients)",
        len(cohort.scans),
        len(cohort.patients()),
        n_train,
        len(cohort.patients("holdout")),
    )


def _preflight(config: PipelineConfig, cohort: Cohort) -> None:
    """Check the loss and the privacy plan from the manifest alone, before any scan is decoded.

    Training repeats these checks. Running them here as well makes a bad delta or an
    unreachable epsilon fail in seconds, not after the whole cohort is preprocessed.
    """
    from medgan.privacy.preflight import plan_privacy
    from medgan.training.losses import check_loss

    n_train = len(cohort.patients("train"))
    if n_train < 2:
        raise InputError(f"manifest {config.data.manifest} has {n_train} training patient(s); training needs at least 2")
    check_loss(config.train.loss, dp=config.privacy.enabled)
    plan_privacy(config.privacy, n_patients=n_train, batch_size=config.train.batch_size, steps=config.train.steps)


def _train_subset(prepared: Any, split: str) -> Any:
    from medgan.data.dataset import PreparedCohort

    return PreparedCohort(
        scans=[scan for scan in prepared.scans if scan.split == split],
        label_names=prepared.label_names,
        label_values=prepared.label_values,
        grid=prepared.grid,
    )


def _stage_train(state: PipelineState) -> None:
    from medgan.training import train_gan
    from medgan.training.checkpoint import CHECKPOINT_NAME

    resume = (state.layout.checkpoints / CHECKPOINT_NAME).exists()
    if resume:
        logger.info("train: resuming from the checkpoint in the run's private folder")
    result = train_gan(_train_subset(state.prepared, "train"), state.config, state.layout, progress=state.progress, resume=resume)
    state.train_result = result
    state.report["privacy"] = result.privacy
    state.report["training"] = {"steps": result.steps, "wall_s": round(result.wall_s, 2), "device": result.device}
    target = state.config.privacy.target_epsilon
    epsilon = result.privacy.get("epsilon")
    if result.privacy.get("private") and target is not None and epsilon is not None and epsilon > target * 1.001:
        result.privacy.setdefault("warnings", []).append(
            f"Epsilon {epsilon:.4g} exceeds the target {target:g}: steps replayed after a resume are charged again, "
            "so an interrupted and resumed run spends more than planned."
        )
    for warning in result.privacy.get("warnings", []):
        logger.warning("privacy: %s", warning)


def _synthetic_modalities(prepared: Any) -> dict[tuple[tuple[str, str], ...], str]:
    """Map each label combination to the modality its training scans share.

    The generator has no modality of its own, so the synthetic volumes of a condition
    take the modality of the real scans of that condition (the export needs it to write
    HU for CT). A condition whose scans mix modalities is left out.
    """
    seen: dict[tuple[tuple[str, str], ...], set[str]] = {}
    for scan in prepared.scans:
        key = tuple(sorted(scan.labels.items()))
        seen.setdefault(key, set()).add(scan.modality)
    return {key: next(iter(values)) for key, values in seen.items() if len(values) == 1}


def _stage_generate(state: PipelineState) -> None:
    from medgan.training.generate import generate_volumes

    config = state.config
    index = generate_volumes(
        state.layout.generator,
        state.layout.synthetic,
        n_per_condition=config.generate.n_per_condition,
        seed=config.generate.seed,
        preprocess=config.preprocess,
    )
    state.synthetic_index = index
    state.report["synthetic"] = index
    logger.info("generate: %d synthetic volumes in %s", len(index), state.layout.synthetic)


def _load_synthetic(state: PipelineState) -> list[Any]:
    """Reload the synthetic NIfTI files through the same loader and profile as real scans."""
    from medgan.data.dataset import PreparedScan
    from medgan.data.preprocess import preprocess_volume
    from medgan.data.reader import load_volume

    modalities = _synthetic_modalities(state.prepared)
    scans = []
    for entry in state.synthetic_index:
        labels = dict(entry.get("labels", {}))
        modality = entry.get("modality") or modalities.get(tuple(sorted(labels.items())), "MR")
        volume = load_volume(state.layout.synthetic / entry["file"], modality=modality)
        array = preprocess_volume(volume, state.config.preprocess, modality)
        scans.append(
            PreparedScan(
                scan_id=entry["file"],
                patient_id=entry["file"],
                split="synthetic",
                labels=labels,
                modality=modality,
                array=array,
            )
        )
    return scans


def _stage_evaluate(state: PipelineState) -> None:
    from medgan.evaluation import evaluate_sets

    synthetic = _load_synthetic(state)
    train = [scan for scan in state.prepared.scans if scan.split == "train"]
    holdout = [scan for scan in state.prepared.scans if scan.split == "holdout"]
    sections = evaluate_sets(
        train,
        holdout,
        synthetic,
        state.config.evaluation,
        private_dir=state.layout.private_evaluation,
        progress=state.progress,
    )
    state.report.update(sections)
    flagged = sections.get("memorization", {}).get("flagged", [])
    if flagged:
        logger.warning("evaluate: %d synthetic scan(s) flagged as copies of training scans", len(flagged))
    else:
        logger.info("evaluate: no synthetic scan flagged as a copy")


def _stage_export(state: PipelineState) -> None:
    from medgan.export import export_run

    _write_report(state)  # export reads report.json
    summary = export_run(
        state.layout.root,
        fmt=state.config.export.format,
        out_dir=state.layout.export / state.config.export.format,
        approved_only=False,
        staging=True,
    )
    state.report["export"] = {
        "staging": True,
        "format": state.config.export.format,
        "written": list(summary.written),
        "left_out": list(summary.left_out),
        "note": "Staging export: a release needs reviewer approval (medgan dashboard, then medgan export --approved-only).",
    }
    logger.info("export: %d volumes staged, %d left out", len(summary.written), len(summary.left_out))


_STAGE_FUNCTIONS = {
    "ingest": _stage_ingest,
    "train": _stage_train,
    "generate": _stage_generate,
    "evaluate": _stage_evaluate,
    "export": _stage_export,
}


def _write_report(state: PipelineState) -> None:
    from medgan.pipeline.report import render_report_html

    write_json_atomic(state.layout.report_json, state.report)
    write_text_atomic(state.layout.report_html, render_report_html(state.report, state.layout))


def _remove_if_nothing_to_keep(layout: RunLayout, fresh: bool) -> None:
    """Delete a run folder this call created when it failed before any training checkpoint.

    Such a folder contains only a salt, a pseudonym map and a cache, and a rerun needs
    none of them. Keeping it would leave a half-made run that looks like a real one.  A folder
    with a checkpoint is kept so that training can resume.
    """
    from medgan.training.checkpoint import CHECKPOINT_NAME

    if fresh and not (layout.checkpoints / CHECKPOINT_NAME).exists():
        shutil.rmtree(layout.root, ignore_errors=True)
        logger.info("removed the incomplete run folder %s", layout.root)


def run_pipeline(
    config: PipelineConfig, out_dir: str | Path, *, progress: bool = True, stages: tuple[str, ...] = STAGES
) -> dict[str, Any]:
    """Run the stages of ``config`` into ``out_dir`` and return the report.

    ``stages`` must be a prefix of :data:`STAGES` (``medgan train`` runs ingest and
    train only), because each stage needs what the ones before it produced.  The
    resolved configuration is written twice: with site paths (private) and without
    (public).  Stage timings and peak memory go into the report's ``stages`` section.

    Raises:
        ConfigError: ``stages`` is not a prefix of the pipeline's stages.
    """
    if tuple(stages) != STAGES[: len(stages)] or not stages:
        raise ConfigError(f"stages must be a non-empty prefix of {STAGES}, got {tuple(stages)}")
    root = Path(out_dir).resolve()
    fresh = not root.exists() or not any(root.iterdir())
    layout = RunLayout(root).create()
    write_text_atomic(layout.private_config, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    write_text_atomic(layout.config, yaml.safe_dump(public_config(config), sort_keys=False))
    state = PipelineState(config=config, layout=layout, progress=progress)
    state.report.update(
        {
            "medgan_version": __version__,
            "run_name": config.name,
            "created_utc": _utc_now(),
            "config": public_config(config),
            "stages": {},
        }
    )
    for index, name in enumerate(stages, start=1):
        logger.info("stage %d/%d: %s", index, len(stages), name)
        try:
            with measure_stage() as measurement:
                _STAGE_FUNCTIONS[name](state)
        except BaseException:
            _remove_if_nothing_to_keep(layout, fresh)
            raise
        state.report["stages"][name] = measurement.as_dict()
        logger.info("stage %s finished in %.1f s (peak RSS %.0f MiB)", name, measurement.wall_s, measurement.peak_rss_mb)
    state.report["finished_utc"] = _utc_now()
    _write_report(state)
    return state.report
