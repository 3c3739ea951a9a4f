"""train_gan end to end on tiny generated cohorts: accounting, resume, labelling, rejections.

Each DP run pays for two accountant evaluations (plan and report), so runs that several
tests inspect are built once per module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medgan.config import PipelineConfig
from medgan.errors import ConfigError, PrivacyError
from medgan.privacy.accounting import compute_epsilon
from medgan.privacy.wal import StepLedger
from medgan.runs import RunLayout
from medgan.training import train_gan
from .conftest import TINY_MODEL, make_cohort

pytestmark = pytest.mark.slow


def _config(folder: Path, **sections) -> PipelineConfig:
    manifest = folder / "manifest.csv"
    if not manifest.exists():
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["path,patient_id,modality,split,scan_type"]
        for index in range(3):
            (folder / f"scan{index}.nii").write_bytes(bytes([index]) * 64)
            lines.append(f"scan{index}.nii,p{index},CT,train,a")
        manifest.write_text("\n".join(lines) + "\n")
    raw = {
        "data": {"manifest": str(manifest)},
        "preprocess": {"grid": 16},
        "model": TINY_MODEL.model_dump(),
        "privacy": {"target_epsilon": None, "noise_multiplier": 1.0, "ledger_dir": str(folder / "ledger")},
        "train": {"steps": 6, "batch_size": 2, "generator_batch_size": 2, "seed": 0, "checkpoint_every": 2, "sample_every": 3},
    }
    for section, values in sections.items():
        raw[section] = {**raw.get(section, {}), **values}
    return PipelineConfig.model_validate(raw)


def _train(folder: Path, name: str = "run", cohort=None, config=None, **kwargs):
    layout = RunLayout(folder / name)
    result = train_gan(cohort or make_cohort([1] * 12), config or _config(folder), layout, progress=False, **kwargs)
    return result, layout


def _log(layout: RunLayout) -> list[dict]:
    return [json.loads(line) for line in layout.train_log.read_text().splitlines()]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("straight"))


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resumed")
    _train(folder, stop_after=5)  # killed after step 5; the last checkpoint is at step 4
    return _train(folder, resume=True)


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    # 12 patients, batch 2 (q = 1/6): seed 0 gives empty batches among 24 steps.
    folder = tmp_path_factory.mktemp("long")
    return _train(folder, config=_config(folder, train={"steps": 24, "checkpoint_every": 24, "sample_every": 24}))


def test_train_writes_generator(straight):
    result, _ = straight
    assert (result.generator_dir / "generator.safetensors").is_file()
    assert (result.generator_dir / "generator.json").is_file()


def test_train_report_epsilon_equals_fresh_accountant(straight):
    result, layout = straight
    history = StepLedger(layout.checkpoints / "step_ledger.jsonl").history()
    fresh = compute_epsilon(history, result.privacy["delta"], "prv")
    assert result.privacy["epsilon"] == pytest.approx(fresh.epsilon, rel=1e-9)


def test_train_report_steps(straight):
    assert straight[0].privacy["steps"] == 6


def test_train_cohort_total_is_own_epsilon(straight):
    assert straight[0].privacy["cohort_epsilon_total"] == pytest.approx(straight[0].privacy["epsilon"])


def test_train_generator_json_states_epsilon(straight):
    result, layout = straight
    meta = json.loads((layout.generator / "generator.json").read_text())
    assert (meta["privacy"]["private"], meta["privacy"]["epsilon"]) == (True, result.privacy["epsilon"])


def test_train_discriminator_only_in_private(straight):
    _, layout = straight
    public = [p for p in layout.root.rglob("*") if p.is_file() and layout.private not in p.parents]
    assert [p.name for p in public if p.suffix in (".pt", ".safetensors")] == ["generator.safetensors"]


def test_train_generator_weights_hold_no_discriminator(straight):
    weights = load_file(straight[1].generator / "generator.safetensors")
    assert not any(name.startswith(("features", "score", "projections")) for name in weights)


def test_train_sample_images_private(straight):
    assert sorted(p.name for p in straight[1].samples.glob("*.png")) == ["step-000003.png", "step-000006.png"]


def test_train_tensorboard_private(straight):
    assert any(straight[1].tensorboard.glob("events.out.tfevents.*"))


def test_train_accountant_steps_match_optimizer(long_run):
    _, layout = long_run
    state = torch.load(layout.checkpoints / "last.pt", weights_only=False)
    optimizer_steps = int(state["trainer"]["d_optimizer"]["state"][0]["step"])
    accounted = sum(steps for _, _, steps in StepLedger(layout.checkpoints / "step_ledger.jsonl").history())
    assert accounted == optimizer_steps == 24


def test_train_seed_yields_empty_batches(long_run):
    # Guards the test above: without an empty batch it would not cover the empty case.
    assert any(row["batch"] == 0 for row in _log(long_run[1]))


def test_train_log_strict_json(long_run):
    # Python's json reads NaN, but the log must be JSON that every reader accepts.
    def reject(constant):
        raise ValueError(f"{constant} is not JSON")

    lines = long_run[1].train_log.read_text().splitlines()
    assert [json.loads(line, parse_constant=reject)["step"] for line in lines] == list(range(1, 25))


def test_train_empty_batch_losses_null(long_run):
    empty = [row for row in _log(long_run[1]) if row["batch"] == 0]
    assert [(row["d_loss"], row["d_real"], row["d_fake"]) for row in empty] == [(None, None, None)] * len(empty)


def test_train_empty_batches_generator_losses_finite(long_run):
    assert all(row["g_loss"] == row["g_loss"] for row in _log(long_run[1]))


def test_train_kill_and_resume_equals_uninterrupted(straight, resumed):
    a = load_file(straight[1].generator / "generator.safetensors")
    b = load_file(resumed[1].generator / "generator.safetensors")
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_train_kill_and_resume_discriminator_equal(straight, resumed):
    a = torch.load(straight[1].checkpoints / "last.pt", weights_only=False)["trainer"]["discriminator"]
    b = torch.load(resumed[1].checkpoints / "last.pt", weights_only=False)["trainer"]["discriminator"]
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_train_resume_charges_repeated_steps(resumed):
    # Step 5 ran before the kill and again after the resume: the step log charges both.
    assert resumed[0].privacy["steps"] == 7


def test_train_existing_checkpoint_without_resume_rejected(resumed):
    _, layout = resumed
    with pytest.raises(ConfigError, match="--resume"):
        train_gan(make_cohort([1] * 12), _config(layout.root.parent), layout, progress=False)


def test_train_multi_scan_cohort_counts_patients(tmp_path):
    # Six patients with two scans each: the unit is the patient, so q = 2 / 6.
    result, _ = _train(tmp_path, cohort=make_cohort([2] * 6), config=_config(tmp_path, train={"steps": 2}))
    assert (result.privacy["n_patients"], result.privacy["sample_rate"]) == (6, pytest.approx(2 / 6))


def test_train_non_private_labelled(tmp_path):
    result, layout = _train(tmp_path, config=_config(tmp_path, privacy={"enabled": False}))
    assert result.privacy["private"] is False
    assert any("NOT PRIVATE" in warning for warning in result.privacy["warnings"])


def test_train_non_private_generator_json(tmp_path):
    _, layout = _train(tmp_path, config=_config(tmp_path, privacy={"enabled": False}, train={"steps": 2}))
    meta = json.loads((layout.generator / "generator.json").read_text())
    assert meta["privacy"]["private"] is False
    assert meta["privacy"]["epsilon"] is None


def test_train_gradient_penalty_rejected(tmp_path):
    with pytest.raises(PrivacyError, match="gradient penalty"):
        _train(tmp_path, config=_config(tmp_path, train={"loss": "wgan-gp"}))


def test_train_holdout_scan_rejected(tmp_path):
    cohort = make_cohort([1] * 4)
    cohort.scans[0].split = "holdout"
    with pytest.raises(PrivacyError, match="holdout"):
        _train(tmp_path, cohort=cohort)


def test_train_cohort_budget_exceeded_rejected(tmp_path):
    # One run at noise 1.0 spends several epsilon; a budget of 0.5 cannot hold it.
    with pytest.raises(PrivacyError, match="budget"):
        _train(tmp_path, config=_config(tmp_path, privacy={"cohort_budget": 0.5}))


def test_train_secure_mode_ignores_seed(tmp_path, straight):
    # Same seed as the straight run: in secure mode sampling and noise come from OS entropy.
    _, layout = _train(tmp_path, config=_config(tmp_path, privacy={"secure_mode": True}))
    a, b = load_file(straight[1].generator / "generator.safetensors"), load_file(layout.generator / "generator.safetensors")
    assert any(not torch.equal(a[name], b[name]) for name in a)
    assert set(torch.load(layout.checkpoints / "last.pt", weights_only=False)["rng"]) == {"latent", "preview", "init"}
