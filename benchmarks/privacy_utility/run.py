#!/usr/bin/env python
"""Privacy-utility benchmark: medgan at epsilon 1, 4, 8 and without DP, beside two baselines.

Steps:

1. Size the cohort by the noise arithmetic: for each candidate patient count the
   noise multiplier that the smallest epsilon needs (Opacus accountants through
   ``medgan.privacy.accounting``), and the noise-to-signal ratio ``sigma / batch``.
   The smallest count whose ratio is at most ``--max-noise-to-signal`` is built.
2. Build the simulated cohort (``medgan.cohort.build_cohort``) with canary patients.
3. Train, generate and evaluate each epsilon with ``medgan run
   pipelines/benchmark_cohort.yaml --set ...``, one run folder per epsilon.
4. Fit the two baselines (a per-voxel Gaussian released with the analytic Gaussian
   mechanism at each epsilon, and blurred training scans) and evaluate them with
   ``medgan.evaluation.evaluate_sets``, the code the pipeline uses.
5. Count the synthetic scans of every method that show the canary
   (``medgan.cohort.detect_canary``, threshold calibrated on canary-free real scans).
6. Write ``results.json``, ``results.md`` (a markdown table) and a PNG plot.

Run ``python benchmarks/privacy_utility/run.py --profile quick`` for a smoke run of a
few minutes, ``--profile cpu`` for the 2-core CPU benchmark, and ``--profile gpu64`` or
``--profile gpu128`` on a GPU.  Finished runs are reused when the script is run again
with the same ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
PIPELINE = REPOSITORY / "pipelines" / "benchmark_cohort.yaml"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from summary import beats_baselines, markdown_table, plot_curves, row_from_sections  # noqa: E402

logger = logging.getLogger("privacy_utility")

EPSILONS = (1.0, 4.0, 8.0, None)


@dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark configuration."""

    grid: int
    candidates: tuple[int, ...]
    steps: int
    batch_size: int
    generator_batch_size: int
    n_per_condition: int
    canary_share: float
    n_bootstrap: int
    utility_epochs: int
    device: str
    max_noise_to_signal: float
    model: dict[str, int] = field(default_factory=dict)
    workers: int = 1


PROFILES = {
    # Shows every stage and output; 20 steps are too few for meaningful numbers.  Took
    # 525 s in all on a shared 2-core CPU machine.
    "quick": Profile(
        grid=16, candidates=(200,), steps=20, batch_size=16, generator_batch_size=16, n_per_condition=20,
        canary_share=0.01, n_bootstrap=30, utility_epochs=10, device="cpu", max_noise_to_signal=1.0,
    ),
    # Thousands of patients at 16^3, where the noise arithmetic is kinder than hundreds
    # at 32^3.  Estimated at about an hour on 2 free CPU cores, scaled from the quick
    # profile's stage times (20 DP steps of 16 patients took 55 s); not yet run in full.
    "cpu": Profile(
        grid=16, candidates=(1000, 2000, 4000), steps=100, batch_size=32, generator_batch_size=16, n_per_condition=50,
        canary_share=0.005, n_bootstrap=100, utility_epochs=20, device="cpu", max_noise_to_signal=0.05,
    ),
    # NOTE: the GPU profiles have not been run; their sizes are a starting point.
    "gpu64": Profile(
        grid=64, candidates=(2000, 4000, 8000), steps=2000, batch_size=128, generator_batch_size=32, n_per_condition=200,
        canary_share=0.005, n_bootstrap=200, utility_epochs=30, device="cuda", max_noise_to_signal=0.03,
        model={"latent_dim": 128, "base_channels": 32, "disc_channels": 32}, workers=8,
    ),
    "gpu128": Profile(
        grid=128, candidates=(2000, 4000), steps=2000, batch_size=64, generator_batch_size=16, n_per_condition=100,
        canary_share=0.005, n_bootstrap=200, utility_epochs=30, device="cuda", max_noise_to_signal=0.06,
        model={"latent_dim": 128, "base_channels": 32, "disc_channels": 16}, workers=8,
    ),
}
SPACING_MM = {16: 12.0, 32: 6.0, 64: 3.0, 128: 1.5}
HOLDOUT_FRACTION = 0.2


def default_delta(n_patients: int) -> float:
    """Return the delta the pipeline uses by default: min(1e-5, 1 / (10 n))."""
    return min(1e-5, 1.0 / (10.0 * n_patients))


def size_cohort(profile: Profile, epsilons: list[float]) -> tuple[int, list[dict[str, Any]]]:
    """Pick the patient count from the noise arithmetic; return it with the table behind it.

    The smallest epsilon needs the most noise.  The count chosen is the smallest
    candidate whose noise-to-signal ratio at that epsilon is at most the profile's
    limit, or the largest candidate when none is.
    """
    from medgan.privacy.accounting import noise_for_target

    table = []
    chosen = None
    for n_patients in profile.candidates:
        n_train = n_patients - int(round(HOLDOUT_FRACTION * n_patients))
        sample_rate = profile.batch_size / n_train
        entry: dict[str, Any] = {"n_patients": n_patients, "n_train": n_train, "sample_rate": sample_rate, "per_epsilon": {}}
        for epsilon in epsilons:
            # RDP is a few percent more conservative than the pipeline's PRV, and much faster.
            sigma = noise_for_target(epsilon, default_delta(n_train), sample_rate, profile.steps, accountant="rdp")
            entry["per_epsilon"][f"{epsilon:g}"] = {"noise_multiplier": sigma, "noise_to_signal": sigma / profile.batch_size}
        worst = max(value["noise_to_signal"] for value in entry["per_epsilon"].values()) if epsilons else 0.0
        entry["worst_noise_to_signal"] = worst
        table.append(entry)
        if chosen is None and worst <= profile.max_noise_to_signal:
            chosen = n_patients
    return (chosen if chosen is not None else profile.candidates[-1]), table


def build_or_reuse(out: Path, profile: Profile, n_patients: int, n_canaries: int, seed: int) -> Path:
    """Build the cohort under ``out/cohort``, or reuse one built with the same options."""
    from medgan.cohort import build_cohort, read_cohort_info

    folder = out / "cohort"
    if (folder / "cohort.json").exists():
        spec = read_cohort_info(folder)["spec"]
        if (spec["n_patients"], spec["seed"], spec["grid"], spec["n_canaries"]) == (n_patients, seed, profile.grid, n_canaries):
            logger.info("reusing the cohort in %s", folder)
            return folder / "manifest.csv"
        raise SystemExit(f"{folder} contains a cohort built with other options; pass another --out or remove it")
    started = time.perf_counter()
    manifest = build_cohort(folder, n_patients, seed, profile.grid, n_canaries=n_canaries, workers=profile.workers, holdout_fraction=HOLDOUT_FRACTION, write_masks=False)
    logger.info("cohort of %d patients built in %.0f s", n_patients, time.perf_counter() - started)
    return manifest


def common_overrides(out: Path, manifest: Path, profile: Profile) -> list[str]:
    """Return the ``--set`` overrides shared by every run and by the baselines' evaluation."""
    overrides = [
        f"data.manifest={manifest}",
        f"data.cache_dir={out / 'cache'}",
        f"data.holdout_fraction={HOLDOUT_FRACTION}",
        f"preprocess.grid={profile.grid}",
        f"preprocess.spacing_mm={SPACING_MM[profile.grid]}",
        f"train.steps={profile.steps}",
        f"train.batch_size={profile.batch_size}",
        f"train.generator_batch_size={profile.generator_batch_size}",
        f"train.device={profile.device}",
        f"train.checkpoint_every={max(1, profile.steps // 4)}",
        f"train.sample_every={max(1, profile.steps // 4)}",
        f"generate.n_per_condition={profile.n_per_condition}",
        f"evaluation.n_bootstrap={profile.n_bootstrap}",
        f"evaluation.utility_epochs={profile.utility_epochs}",
        f"privacy.ledger_dir={out / 'ledger'}",
    ]
    overrides += [f"model.{key}={value}" for key, value in profile.model.items()]
    return overrides


def run_epsilon(out: Path, epsilon: float | None, overrides: list[str]) -> tuple[Path, float]:
    """Run the pipeline at one epsilon (None: without DP); reuse a finished run folder."""
    name = "eps-none" if epsilon is None else f"eps-{epsilon:g}"
    run_dir = out / "runs" / name
    timing = run_dir.parent / f"{name}.wall_s"
    recorded = run_dir.parent / f"{name}.overrides.json"
    privacy = ["privacy.enabled=false", "privacy.target_epsilon=null"] if epsilon is None else ["privacy.enabled=true", f"privacy.target_epsilon={epsilon:g}"]
    settings = [*overrides, *privacy, f"name=benchmark-{name}"]
    if (run_dir / "report.json").exists() and timing.exists() and recorded.exists():
        if json.loads(recorded.read_text(encoding="utf-8")) != settings:
            raise SystemExit(f"{run_dir} was run with other settings (see {recorded}); pass another --out")
        logger.info("reusing the finished run %s", run_dir)
        return run_dir, float(timing.read_text())
    if run_dir.exists():
        raise SystemExit(f"{run_dir} contains an unfinished run (no report.json); remove it and run the benchmark again")
    command = [sys.executable, "-m", "medgan", "run", str(PIPELINE), "--out", str(run_dir), "--no-progress"]
    for override in settings:
        command += ["--set", override]
    logger.info("running %s", name)
    started = time.perf_counter()
    log_path = run_dir.parent / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY, check=False)
    wall_s = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"medgan run for {name} failed with status {completed.returncode}; see {log_path}")
    timing.write_text(f"{wall_s:.1f}\n")
    recorded.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    return run_dir, wall_s


@dataclass
class RealSets:
    """Preprocessed real scans of the benchmark cohort and the canary truth."""

    train: list[Any]
    holdout: list[Any]
    canary_scan_ids: set[str]
    config: Any


def load_real_sets(out: Path, overrides: list[str], cohort_dir: Path) -> RealSets:
    """Preprocess the cohort with the pipeline's profile (reusing the runs' cache)."""
    from medgan.cohort import read_cohort_info
    from medgan.config import load_pipeline
    from medgan.data.dataset import prepare_cohort
    from medgan.data.manifest import load_manifest
    from medgan.data.pseudonym import Pseudonymizer, load_or_create_salt

    config = load_pipeline(PIPELINE, overrides)
    pseudonymizer = Pseudonymizer(load_or_create_salt(out / "private" / "salt"))
    cohort = load_manifest(config.data.manifest, pseudonymizer, holdout_fraction=config.data.holdout_fraction)
    prepared = prepare_cohort(cohort, config.data, config.preprocess, Path(config.data.cache_dir), progress=False)
    info = read_cohort_info(cohort_dir)
    canary_sources = {(cohort_dir / scan["path"]).resolve() for patient in info["patients"] if patient["canary"] for scan in patient["scans"]}
    canary_ids = {scan.scan_id for scan in cohort.scans if scan.source in canary_sources}
    return RealSets(train=prepared.split("train"), holdout=prepared.split("holdout"), canary_scan_ids=canary_ids, config=config)


def canary_scores(arrays: list[Any], spacing_mm: float) -> list[float]:
    """Return the canary detector's score of each (1, G, G, G) array."""
    from medgan.cohort import detect_canary

    return [detect_canary(array[0], spacing_mm) for array in arrays]


def canary_summary(synthetic_arrays: list[Any], threshold: float, spacing_mm: float) -> dict[str, Any]:
    """Count synthetic volumes whose canary score exceeds the threshold."""
    scores = canary_scores(synthetic_arrays, spacing_mm)
    return {"reproduced": int(sum(score > threshold for score in scores)), "synthetic": len(scores), "max_score": round(max(scores), 4) if scores else None}


def load_run_synthetic(run_dir: Path, config: Any) -> list[Any]:
    """Load a run's synthetic files through the pipeline's reader and profile."""
    from medgan.data.preprocess import preprocess_volume
    from medgan.data.reader import load_volume

    index = json.loads((run_dir / "synthetic" / "index.json").read_text(encoding="utf-8"))
    entries = index["files"] if isinstance(index, dict) and "files" in index else index
    arrays = []
    for entry in entries:
        volume = load_volume(run_dir / "synthetic" / entry["file"], modality="MR")
        arrays.append(preprocess_volume(volume, config.preprocess, "MR"))
    return arrays


def as_scans(arrays: Any, labels: list[str], prefix: str) -> list[Any]:
    """Wrap baseline volumes as PreparedScan objects so evaluate_sets treats them like samples."""
    from medgan.data.dataset import PreparedScan

    return [
        PreparedScan(scan_id=f"{prefix}-{index:04d}.nii.gz", patient_id=f"{prefix}-{index:04d}", split="synthetic", labels={"lesion": label}, modality="MR", array=array)
        for index, (array, label) in enumerate(zip(arrays, labels))
    ]


def patient_volumes(scans: list[Any]) -> tuple[list[Any], list[str]]:
    """Average each patient's scans, so every patient contributes one volume to the DP sums."""
    import numpy as np

    grouped: dict[str, list[Any]] = defaultdict(list)
    labels: dict[str, str] = {}
    for scan in scans:
        grouped[scan.patient_id].append(scan.array)
        labels[scan.patient_id] = scan.labels["lesion"]
    patients = sorted(grouped)
    return [np.mean(grouped[patient], axis=0) for patient in patients], [labels[patient] for patient in patients]


def run_baselines(real: RealSets, epsilons: list[float | None], profile: Profile, seed: int, threshold: float) -> list[dict[str, Any]]:
    """Fit, sample and evaluate the two baselines; return their rows."""
    import numpy as np

    from medgan.cohort.baselines import blurred_copies, fit_dp_gaussian
    from medgan.evaluation import evaluate_sets

    rows = []
    spacing = real.config.preprocess.spacing_mm
    volumes, labels = patient_volumes(real.train)
    delta = default_delta(len(volumes))
    values = sorted(set(labels))
    for epsilon in epsilons:
        started = time.perf_counter()
        rng = np.random.default_rng([seed, 7, 0 if epsilon is None else int(epsilon * 1000)])
        model = fit_dp_gaussian(volumes, labels, epsilon=epsilon, delta=None if epsilon is None else delta, rng=rng)
        arrays = [sample for value in values for sample in model.sample(value, profile.n_per_condition, rng)]
        sample_labels = [value for value in values for _ in range(profile.n_per_condition)]
        wall_s = time.perf_counter() - started
        sections = evaluate_sets(real.train, real.holdout, as_scans(arrays, sample_labels, "gauss"), real.config.evaluation, progress=False)
        privacy = None if epsilon is None else {"epsilon": epsilon, "noise_multiplier": model.noise_std, "noise_to_signal": None}
        rows.append(row_from_sections("baseline: voxel Gaussian", epsilon, sections, wall_s=wall_s, canaries=canary_summary(arrays, threshold, spacing), privacy=privacy))
    started = time.perf_counter()
    stacked = np.stack([scan.array for scan in real.train])  # (N, 1, G, G, G)
    arrays, blurred_labels = blurred_copies(stacked, [scan.labels["lesion"] for scan in real.train], profile.n_per_condition, sigma_voxels=1.0, rng=np.random.default_rng([seed, 8]))
    wall_s = time.perf_counter() - started
    sections = evaluate_sets(real.train, real.holdout, as_scans(list(arrays), blurred_labels, "blur"), real.config.evaluation, progress=False)
    rows.append(row_from_sections("baseline: blurred training scans", None, sections, wall_s=wall_s, canaries=canary_summary(list(arrays), threshold, spacing)))
    return rows


def parse_epsilons(text: str) -> list[float | None]:
    """Parse '1,4,8,none' into [1.0, 4.0, 8.0, None]."""
    values: list[float | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        values.append(None if part in ("none", "inf") else float(part))
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="Benchmark size (default: quick).")
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: benchmarks/privacy_utility/results/<profile>).")
    parser.add_argument("--epsilons", default="1,4,8,none", help="Comma-separated epsilons; 'none' trains without DP.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the cohort and the baselines.")
    parser.add_argument("--n-patients", type=int, default=None, help="Patient count instead of the noise arithmetic's choice.")
    parser.add_argument("--plot", type=Path, default=None, help="PNG path (default: docs/images/privacy_utility_<profile>.png).")
    arguments = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    profile = PROFILES[arguments.profile]
    out = (arguments.out or REPOSITORY / "benchmarks" / "privacy_utility" / "results" / arguments.profile).resolve()
    epsilons = parse_epsilons(arguments.epsilons)
    finite = [epsilon for epsilon in epsilons if epsilon is not None]
    total_started = time.perf_counter()

    chosen, sizing = size_cohort(profile, finite)
    n_patients = arguments.n_patients or chosen
    n_canaries = max(2, int(round(profile.canary_share * n_patients)))
    logger.info("cohort size %d patients (%d canaries) at %d^3; noise arithmetic: %s", n_patients, n_canaries, profile.grid, json.dumps(sizing))
    manifest = build_or_reuse(out, profile, n_patients, n_canaries, arguments.seed)
    overrides = common_overrides(out, manifest, profile)

    runs = [(epsilon, *run_epsilon(out, epsilon, overrides)) for epsilon in epsilons]

    real = load_real_sets(out, overrides, manifest.parent)
    spacing = real.config.preprocess.spacing_mm
    negatives = canary_scores([scan.array for scan in [*real.train, *real.holdout] if scan.scan_id not in real.canary_scan_ids], spacing)
    positives = canary_scores([scan.array for scan in real.train if scan.scan_id in real.canary_scan_ids], spacing)
    from medgan.cohort import canary_threshold, read_cohort_info

    threshold = canary_threshold(negatives)
    detector = {
        "threshold": round(threshold, 4),
        "negatives": len(negatives),
        "max_negative": round(max(negatives), 4),
        "real_canaries_detected": int(sum(score > threshold for score in positives)),
        "real_canaries": len(positives),
    }
    logger.info("canary detector: %s", detector)

    rows = []
    for epsilon, run_dir, wall_s in runs:
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        canaries = canary_summary(load_run_synthetic(run_dir, real.config), threshold, spacing)
        rows.append(row_from_sections("medgan", epsilon, report, wall_s=wall_s, canaries=canaries, privacy=report.get("privacy")))
    rows += run_baselines(real, epsilons, profile, arguments.seed, threshold)

    blurred = [row for row in rows if row["method"] == "baseline: blurred training scans"]
    for row in rows:
        if row["method"] != "medgan":
            continue
        gaussian = [base for base in rows if base["method"] == "baseline: voxel Gaussian" and base["epsilon_target"] == row["epsilon_target"]]
        row["beats_baselines"] = beats_baselines(row, gaussian + blurred)
    floor = next((row for row in rows if row["method"] == "medgan"), rows[0])

    results = {
        "profile": arguments.profile,
        "settings": asdict(profile),
        "n_patients": n_patients,
        "n_canaries": n_canaries,
        "cohort_spec": read_cohort_info(manifest.parent)["spec"],
        "sizing": sizing,
        "canary_detector": detector,
        "rows": rows,
        "total_wall_s": round(time.perf_counter() - total_started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    title = f"medgan privacy-utility, {n_patients} simulated patients at {profile.grid}^3 ({arguments.profile} profile)"
    table = markdown_table(rows, floor)
    (out / "results.md").write_text(f"## {title}\n\n{table}", encoding="utf-8")
    plot_path = arguments.plot or REPOSITORY / "docs" / "images" / f"privacy_utility_{arguments.profile}.png"
    plot_curves(rows, floor, plot_path, title)
    print(table)
    print(f"canary detector: {json.dumps(detector)}")
    print(f"results: {out / 'results.json'}; plot: {plot_path}")


if __name__ == "__main__":
    main()
