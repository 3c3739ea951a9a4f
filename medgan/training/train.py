"""``train_gan``: the training stage, from a prepared train split to a released generator.

Order of events in one step, chosen so that the privacy ledger can only over-count:

1. the Poisson sampler picks patients (one scan each);
2. the step is appended to the write-ahead step ledger;
3. the discriminator and generator are updated;
4. logs, images and (every N steps) an atomic checkpoint are written.

The reported epsilon is recomputed from the ledger's history at the end, never copied
from the target.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan.config import PipelineConfig
from medgan.errors import ConfigError, PrivacyError
from medgan.fileio import sha256_file, write_text_atomic
from medgan.runs import RunLayout
from medgan.training.checkpoint import load_checkpoint, save_checkpoint
from medgan.training.feedback import TrainingMonitor, progress_postfix, slice_grid
from medgan.training.losses import check_loss

__all__ = ["TrainResult", "train_gan", "NOT_PRIVATE"]

logger = logging.getLogger(__name__)

NOT_PRIVATE = "NOT PRIVATE"
_LEDGER_NAME = "step_ledger.jsonl"
_PREVIEW_COUNT = 4


@dataclass
class TrainResult:
    """Result of the training stage, handed to the pipeline.

    Attributes:
        generator_dir: folder with ``generator.safetensors`` and ``generator.json``.
        privacy: the report's privacy section.
        steps: discriminator/generator step pairs completed (each counted by the accountant).
        wall_s: training time of this call in seconds.
        device: where the networks ran.
        warnings: training-health warnings (private: they may reflect real-scan losses).
    """

    generator_dir: Path
    privacy: dict[str, Any]
    steps: int
    wall_s: float
    device: str
    warnings: list[str]


@dataclass
class _Cohort:
    """The train split indexed by patient, with labels encoded as integers."""

    arrays: list[np.ndarray]
    labels: torch.Tensor  # (N_scans, L) int64
    patient_scans: list[list[int]]
    label_names: list[str]
    label_values: dict[str, list[str]]
    modality: str
    modality_by_condition: list[dict[str, Any]]


def _index_cohort(prepared: Any, grid: int) -> _Cohort:
    """Group scans by patient and encode their labels, rejecting any scan outside the train split."""
    scans = list(prepared.scans)
    if not scans:
        raise ConfigError("the train split is empty; check the manifest's split column and holdout_fraction")
    if int(prepared.grid) != grid:
        raise ConfigError(f"prepared volumes are {prepared.grid}^3 but preprocess.grid is {grid}; re-run preprocessing")
    names = list(prepared.label_names)
    if not names:
        raise ConfigError("the cohort has no label column; the conditional GAN needs at least one (for example scan_type)")
    values = {name: list(prepared.label_values[name]) for name in names}

    by_patient: dict[str, list[int]] = defaultdict(list)
    rows = []
    for index, scan in enumerate(scans):
        if scan.split != "train":
            raise PrivacyError(f"scan {scan.scan_id} has split {scan.split!r}; only train scans may reach training")
        if tuple(scan.array.shape) != (1, grid, grid, grid):
            raise ConfigError(f"scan {scan.scan_id} has shape {tuple(scan.array.shape)}, expected (1, {grid}, {grid}, {grid})")
        row = []
        for name in names:
            value = scan.labels.get(name)
            if value not in values[name]:
                raise ConfigError(f"scan {scan.scan_id}: label {name}={value!r} is not in the vocabulary {values[name]}")
            row.append(values[name].index(value))
        rows.append(row)
        by_patient[scan.patient_id].append(index)

    modalities = sorted({str(scan.modality) for scan in scans})
    by_condition: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for scan in scans:
        by_condition[tuple(scan.labels[name] for name in names)].add(str(scan.modality))
    mixed = [dict(zip(names, key)) for key, found in by_condition.items() if len(found) > 1]
    if mixed:
        raise ConfigError(
            f"label combination(s) {mixed} mix CT and MR scans, so synthetic volumes of that condition have no "
            "intensity unit; add a label column that separates the modalities (for example scan_type)"
        )

    return _Cohort(
        arrays=[np.asarray(scan.array, dtype=np.float32) for scan in scans],
        labels=torch.tensor(rows, dtype=torch.long),
        patient_scans=[by_patient[patient] for patient in sorted(by_patient)],
        label_names=names,
        label_values=values,
        modality=modalities[0] if len(modalities) == 1 else "mixed",
        modality_by_condition=[
            {"labels": dict(zip(names, key)), "modality": next(iter(found))} for key, found in sorted(by_condition.items())
        ],
    )


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but no CUDA device is available; use 'cpu' or 'auto'")
    return torch.device(name)


def _process_group() -> tuple[int, int]:
    """Return (rank, world size) of an initialised torch.distributed group, or (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _send_section(section: dict[str, Any]) -> None:
    """Broadcast the privacy section from rank 0, so every process returns the same result."""
    import torch.distributed as dist

    dist.broadcast_object_list([section], src=0)


def _receive_section() -> dict[str, Any]:
    import torch.distributed as dist

    box: list[Any] = [None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _generators(
    seed: int | None, secure: bool, rank: int = 0, world: int = 1, device: torch.device | None = None
) -> tuple[dict[str, torch.Generator], bool]:
    """Random sources: Poisson sampler, DP noise, latent vectors, fixed preview latents, initial weights.

    Returns the generators and whether the run is seeded (resumable bit-exactly).  In
    secure mode the sampler and the noise come from OS entropy and their seeds are never
    stored: the privacy analysis assumes an adversary cannot predict which patients were
    sampled or what noise was added.
    """
    seeded = seed is not None and not secure
    roots = np.random.SeedSequence(seed if seeded else secrets.randbits(128)).generate_state(5, dtype=np.uint64)
    names = ("sampler", "noise", "latent", "preview", "init")
    generators = {name: torch.Generator().manual_seed(int(value) >> 1) for name, value in zip(names, roots)}
    # Opacus draws the noise on the parameters' device, so its generator must live there too.
    generators["noise"] = torch.Generator(device=device or "cpu").manual_seed(int(roots[1]) >> 1)
    if world > 1:
        # Each process samples its own patients and draws its own fake volumes; the
        # generator steps use the shared "latent" stream so the replicas stay identical.
        generators["sampler"].manual_seed((int(roots[0]) >> 1) + rank)
        generators["fake"] = torch.Generator().manual_seed((int(roots[2]) >> 1) + rank + 1)
    if secure:
        generators["sampler"].manual_seed(secrets.randbits(63))
        generators["noise"].manual_seed(secrets.randbits(63))
    return generators, seeded


def train_gan(
    prepared: Any,
    config: PipelineConfig,
    layout: RunLayout,
    *,
    progress: bool = True,
    resume: bool = False,
    stop_after: int | None = None,
) -> TrainResult:
    """Train the conditional GAN on the train split and save the generator.

    Args:
        prepared: ``PreparedCohort`` of the train split only.
        config: the pipeline configuration (model, privacy, train, preprocess sections).
        layout: the run folder; checkpoints, logs and images go to its private part.
        progress: show a progress bar.
        resume: continue from ``private/checkpoints`` (bit-exact in seeded mode).
        stop_after: stop after this global step, as if the process were killed, without
            saving the generator (for tests of resume and time-boxed sessions).

    Raises:
        ConfigError: invalid combination of options or data.
        PrivacyError: a privacy rule would be broken (budget, loss, layer types).
    """
    from tqdm.auto import tqdm

    from medgan.models import build_discriminator, build_generator
    from medgan.privacy.ledger import CohortLedger
    from medgan.privacy.preflight import plan_privacy
    from medgan.privacy.report import privacy_section
    from medgan.privacy.wal import StepLedger
    from medgan.training.bundle import save_generator
    from medgan.training.dp_gan import DPGANTrainer, DPSettings, LabelPrior
    from medgan.training.sampler import DistributedPatientSampler, PatientPoissonSampler

    started = time.perf_counter()
    train, privacy, grid = config.train, config.privacy, config.preprocess.grid
    dp = privacy.enabled
    check_loss(train.loss, dp=dp)
    cohort = _index_cohort(prepared, grid)
    n_patients = len(cohort.patient_scans)
    n_classes = [len(cohort.label_values[name]) for name in cohort.label_names]
    device = _resolve_device(train.device)
    rank, world = _process_group()
    main = rank == 0
    if world > 1 and not dp:
        raise ConfigError("multi-process training is implemented for DP runs only; run a non-private comparison in one process")
    if world > 1 and resume:
        raise ConfigError("multi-process runs cannot resume yet; start a new run folder, or resume in one process")
    layout.create()

    state = load_checkpoint(layout.checkpoints)
    if state is not None and not resume:
        raise ConfigError(
            f"{layout.checkpoints} already contains a checkpoint at step {state['step']}; pass --resume to continue it "
            "or choose a new run folder"
        )
    plan = plan_privacy(privacy, n_patients=n_patients, batch_size=train.batch_size, steps=train.steps)
    sample_rate = plan.sample_rate
    total_steps = plan.steps
    notes = list(plan.warnings)
    if dp and not privacy.secure_mode:
        notes.append(
            "Seeded mode: the DP noise is reproducible from train.seed, so the guarantee holds only while the seed "
            "stays secret; use privacy.secure_mode=true for a release."
        )
    run_id = _run_id(layout) if main else ""
    key, members = _cohort_key(config) if dp and main else (None, [])
    ledger = CohortLedger(privacy.ledger_dir) if dp and main else None
    if dp and main:
        # members charges cohorts that share scans with this one, so adding a scan to a
        # manifest does not open a fresh budget for the patients already in it.
        ledger.check_budget(key, plan.epsilon.epsilon, privacy.cohort_budget, run_id=run_id, delta=plan.delta, members=members)

    generators, seeded = _generators(train.seed, privacy.secure_mode, rank=rank, world=world, device=device)
    with torch.random.fork_rng(devices=[]):
        # Initial weights come from the run's own seed, not from whatever the process drew before.
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generators["init"])))
        generator = build_generator(config.model, grid, n_classes)
        discriminator = build_discriminator(config.model, grid, n_classes, dp=dp)
    prior = LabelPrior.from_config(train.label_prior, cohort.label_names, cohort.label_values)
    # Each process clips its own share; DistributedDPOptimizer sums the shares, so the
    # per-process expected batch is the global one divided by the number of processes.
    settings = DPSettings(plan.noise_multiplier, privacy.max_grad_norm, train.batch_size / world, train.dp_engine) if dp else None
    trainer = DPGANTrainer(
        generator,
        discriminator,
        loss=train.loss,
        lr_generator=train.lr_generator,
        lr_discriminator=train.lr_discriminator,
        dp=settings,
        noise_generator=generators["noise"],
        latent_generator=generators["latent"],
        prior=prior,
        latent_dim=config.model.latent_dim,
        device=device,
        fake_generator=generators.get("fake"),
        distributed=world > 1,
    )
    if world > 1:
        sampler = DistributedPatientSampler(
            cohort.patient_scans, sample_rate, generators["sampler"], steps=total_steps, shuffle_seed=train.seed or 0
        )
    else:
        sampler = PatientPoissonSampler(cohort.patient_scans, sample_rate, generators["sampler"])
    preview_labels = prior.sample(_PREVIEW_COUNT, generators["preview"]).to(device)
    preview_z = torch.randn(_PREVIEW_COUNT, config.model.latent_dim, generator=generators["preview"]).to(device)
    steps_ledger = StepLedger(layout.checkpoints / _LEDGER_NAME)

    start = 0
    if resume and state is not None:
        start = _restore(state, trainer, generators, seeded=seeded, dp=dp)
        logger.info("resuming at step %d of %d", start, total_steps)

    monitor = TrainingMonitor(layout.train_log, layout.tensorboard) if main else None
    bar = tqdm(total=total_steps, initial=start, disable=not (progress and main), desc="train" + ("" if dp else f" ({NOT_PRIVATE})"), unit="step")
    step = start
    counted = len(steps_ledger) if dp else start
    loop_started = time.perf_counter()
    try:
        for step in range(start + 1, total_steps + 1):
            if dp and not seeded and counted >= plan.steps:
                # Steps repeated after a resume from an older checkpoint drew fresh noise, so they
                # spent privacy again.  (A seeded resume replays them bit-exactly: same data, same
                # noise, same outputs; the log still charges them, but training runs to the end.)
                notes.append(
                    f"Training stopped at step {step - 1} of {total_steps}: the step log already counts {counted} "
                    "steps (steps repeated after a resume count twice), which spends the planned budget."
                )
                logger.warning(notes[-1])
                step -= 1
                break
            _, scan_indices = sampler.sample()
            if dp and main:
                steps_ledger.append(step, plan.noise_multiplier, sample_rate)
            counted += 1
            real = torch.from_numpy(np.stack([cohort.arrays[i] for i in scan_indices])) if scan_indices else torch.zeros((0, 1, grid, grid, grid))
            real_labels = cohort.labels[scan_indices] if scan_indices else torch.zeros((0, len(n_classes)), dtype=torch.long)
            fake, fake_labels = trainer.fake_batch(len(scan_indices))
            values: dict[str, Any] = {"batch": len(scan_indices)}
            values.update(trainer.discriminator_step(real.to(device), real_labels.to(device), fake, fake_labels))
            values.update(trainer.generator_step(train.generator_batch_size))
            bar.update(1)
            if main:
                bar.set_postfix(progress_postfix(values), refresh=False)
                _write_step_outputs(step, values, trainer, monitor, layout, train, total_steps, preview_z, preview_labels)
                if dp and monitor.writer is not None and step % train.sample_every == 0:
                    monitor.writer.add_scalar("privacy/epsilon_spent_rdp_bound", _quick_epsilon(counted, plan), step)
                if step % train.checkpoint_every == 0 or step == total_steps:
                    save_checkpoint(layout.checkpoints, _snapshot(step, trainer, generators, seeded=seeded))
            if stop_after is not None and step >= stop_after:
                break
    finally:
        bar.close()
        if monitor is not None:
            monitor.close()
    loop_s = time.perf_counter() - loop_started
    wall_s = time.perf_counter() - started
    warnings_seen = monitor.warnings if monitor is not None else []
    if stop_after is not None and step >= stop_after and step < total_steps:
        return TrainResult(layout.generator, {}, step, wall_s, str(device), warnings_seen)
    if not main:
        section = _receive_section()
        return TrainResult(layout.generator, section, step, wall_s, str(device), warnings_seen)

    history = steps_ledger.history() if dp else [(0.0, sample_rate, step)]
    section = privacy_section(
        private=dp,
        history=history,
        delta=plan.delta if dp else None,
        n_patients=n_patients,
        max_grad_norm=privacy.max_grad_norm if dp else None,
        accountant=privacy.accountant,
        cohort_key=key,
        warnings=notes,
    )
    if dp:
        # privacy_section recomputed epsilon from the step log; the ledger is charged that value.
        epsilon = section["epsilon"] if section["epsilon"] is not None else math.inf
        ledger.record_run(key, run_id, epsilon, plan.delta, section["accountant"], members=members)
        total = ledger.spent(key)
        # JSON has no infinity: an unbounded cohort total is written as null with a warning.
        section["cohort_epsilon_total"] = total if math.isfinite(total) else None
        if not math.isfinite(total):
            section["warnings"].append("The cohort's cumulative epsilon is infinite: a run on this cohort had no privacy bound.")
    statement = {key_: section.get(key_) for key_ in ("private", "epsilon", "delta", "accountant", "unit", "steps")}
    save_generator(
        trainer.generator,
        layout.generator,
        model=config.model,
        label_names=cohort.label_names,
        label_values=cohort.label_values,
        preprocess=config.preprocess,
        modality=cohort.modality,
        modality_by_condition=cohort.modality_by_condition,
        privacy=statement,
    )
    if world > 1:
        _send_section(section)
    logger.info(
        "trained %d steps in %.1f s (%.2f s/step; %.1f s in all, with privacy planning and accounting) on %s",
        step - start, loop_s, loop_s / max(1, step - start), wall_s, device,
    )
    return TrainResult(layout.generator, section, step, wall_s, str(device), warnings_seen)


def _write_step_outputs(
    step: int,
    values: dict[str, Any],
    trainer: Any,
    monitor: TrainingMonitor,
    layout: RunLayout,
    train: Any,
    total_steps: int,
    preview_z: torch.Tensor,
    preview_labels: torch.Tensor,
) -> None:
    """Log one step's values and, every ``train.sample_every`` steps, save a sample slice image."""
    monitor.record(step, values)
    if step % train.sample_every == 0 or step == total_steps:
        with torch.no_grad():
            trainer.generator.eval()
            image = slice_grid(trainer.generator(preview_z, preview_labels))
            trainer.generator.train()
        monitor.image(step, image, layout.samples / f"step-{step:06d}.png")


def _quick_epsilon(steps: int, plan: Any) -> float:
    """Epsilon after ``steps`` steps from RDP at integer orders only: a cheap, looser bound for the progress curve.

    The report's epsilon is computed once, at the end, from the step log with PRV and RDP.
    """
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    orders = [1.25, 1.5, 1.75] + list(range(2, 256))
    rdp = compute_rdp(q=plan.sample_rate, noise_multiplier=plan.noise_multiplier, steps=steps, orders=orders)
    with warnings.catch_warnings():
        # A large epsilon puts the optimum at the smallest order; the bound stays valid.
        warnings.simplefilter("ignore")
        epsilon, _ = get_privacy_spent(orders=orders, rdp=rdp, delta=plan.delta)
    return float(epsilon)


def _run_id(layout: RunLayout) -> str:
    """Return the run's id in the cohort ledger, kept in the private folder so a resume reuses it."""
    path = layout.checkpoints / "run_id"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    run_id = f"{layout.root.name}-{secrets.token_hex(6)}"
    write_text_atomic(path, run_id + "\n")
    return run_id


def _cohort_key(config: PipelineConfig) -> tuple[str, list[str]]:
    """Return the cohort's ledger key and the content hashes of every scan it lists (both splits).

    The key covers the whole manifest, not only the train split, so a run with another
    holdout fraction on the same patients is charged to the same cohort.
    """
    import csv

    from medgan.data.dataset import source_digest
    from medgan.privacy.ledger import cohort_key

    manifest = Path(config.data.manifest)
    with open(manifest, newline="", encoding="utf-8-sig") as stream:
        paths = [row["path"] for row in csv.DictReader(stream) if row.get("path")]
    hashes = [source_digest((manifest.parent / path) if not Path(path).is_absolute() else Path(path)) for path in paths]
    return cohort_key(sha256_file(manifest), hashes), hashes


def _snapshot(step: int, trainer: Any, generators: dict[str, torch.Generator], *, seeded: bool) -> dict[str, Any]:
    """Everything a resume needs; secure mode leaves out the sampler and noise states."""
    secret = () if seeded else ("sampler", "noise")
    return {
        "step": step,
        "seeded": seeded,
        "trainer": trainer.state_dict(),
        "rng": {name: g.get_state() for name, g in generators.items() if name not in secret},
        "torch_rng": torch.get_rng_state(),
    }


def _restore(state: dict[str, Any], trainer: Any, generators: dict[str, torch.Generator], *, seeded: bool, dp: bool) -> int:
    if bool(state.get("seeded")) != seeded:
        raise ConfigError(
            "the checkpoint was written in "
            f"{'seeded' if state.get('seeded') else 'secure/unseeded'} mode but this run is "
            f"{'seeded' if seeded else 'secure/unseeded'}; resume with the same train.seed and privacy.secure_mode"
        )
    trainer.load_state_dict(state["trainer"])
    for name, rng_state in state["rng"].items():
        generators[name].set_state(rng_state)
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])
