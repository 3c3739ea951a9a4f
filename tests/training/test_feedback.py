"""Training-health warnings and the label prior built from the configuration."""

from __future__ import annotations

import json

import pytest
import torch

from medgan.errors import ConfigError
from medgan.training.dp_gan import LabelPrior
from medgan.training.feedback import TrainingMonitor, progress_postfix, slice_grid


def _monitor(tmp_path):
    return TrainingMonitor(tmp_path / "log.jsonl", None)


def test_monitor_discriminator_wins_warns(tmp_path):
    monitor = _monitor(tmp_path)
    for step in range(1, 25):
        monitor.record(step, {"d_loss": 0.001, "g_spread": 0.5})
    assert any("wins outright" in message for message in monitor.warnings)


def test_monitor_balanced_losses_silent(tmp_path):
    monitor = _monitor(tmp_path)
    for step in range(1, 25):
        monitor.record(step, {"d_loss": 1.5, "g_spread": 0.5})
    assert monitor.warnings == []


def test_monitor_collapse_warns(tmp_path):
    monitor = _monitor(tmp_path)
    for step in range(1, 30):
        monitor.record(step, {"d_loss": 1.0, "g_spread": 0.5 if step < 10 else 0.01})
    assert any("collapsing" in message for message in monitor.warnings)


def test_monitor_log_lines(tmp_path):
    monitor = _monitor(tmp_path)
    monitor.record(1, {"d_loss": 1.0})
    monitor.record(2, {"d_loss": float("nan")})
    assert [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_slice_grid_shape():
    assert slice_grid(torch.zeros(3, 1, 8, 8, 8)).shape == (8, 24)


def test_slice_grid_range():
    image = slice_grid(torch.linspace(-2, 2, 2 * 8**3).view(2, 1, 8, 8, 8))
    assert (image.min(), image.max()) == (0.0, 1.0)


VALUES = {"scan_type": ["brain_mr", "chest_ct"]}


def test_label_prior_from_weights():
    prior = LabelPrior.from_config({"scan_type": {"chest_ct": 3.0, "brain_mr": 1.0}}, ["scan_type"], VALUES)
    assert torch.allclose(prior.probabilities[0], torch.tensor([0.25, 0.75], dtype=torch.float64))


def test_label_prior_unknown_value_rejected():
    with pytest.raises(ConfigError, match="unknown values"):
        LabelPrior.from_config({"scan_type": {"knee_mr": 1.0}}, ["scan_type"], VALUES)


def test_label_prior_missing_column_rejected():
    with pytest.raises(ConfigError, match="no entry"):
        LabelPrior.from_config({"sex": {"F": 1.0}}, ["scan_type"], VALUES)


def test_label_prior_zero_weights_rejected():
    with pytest.raises(ConfigError, match="positive sum"):
        LabelPrior.from_config({"scan_type": {"chest_ct": 0.0}}, ["scan_type"], VALUES)


def test_label_prior_empty_sample_shape():
    assert LabelPrior([torch.ones(2), torch.ones(3)]).sample(0, torch.Generator()).shape == (0, 2)


def _strict_json(line: str):
    """Parse one line as strict JSON: NaN and Infinity, which Python's json accepts, are errors."""

    def reject(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=reject)


EMPTY_BATCH = {"batch": 0, "d_loss": float("nan"), "d_real": float("nan"), "d_fake": float("nan"), "g_loss": 0.7, "g_spread": 0.2}


def test_monitor_empty_batch_strict_json(tmp_path):
    monitor = TrainingMonitor(tmp_path / "log.jsonl", None)
    monitor.record(1, EMPTY_BATCH)
    row = _strict_json((tmp_path / "log.jsonl").read_text().splitlines()[0])
    assert row == {"step": 1, "batch": 0, "d_loss": None, "d_real": None, "d_fake": None, "g_loss": 0.7, "g_spread": 0.2}


def test_monitor_infinite_loss_null(tmp_path):
    monitor = TrainingMonitor(tmp_path / "log.jsonl", None)
    monitor.record(1, {"batch": 2, "d_loss": float("inf"), "g_loss": 0.5})
    assert _strict_json((tmp_path / "log.jsonl").read_text())["d_loss"] is None


def test_progress_postfix_empty_batch():
    assert progress_postfix(EMPTY_BATCH) == {"d": "empty", "g": "0.700"}


def test_progress_postfix_full_batch():
    assert progress_postfix({"batch": 2, "d_loss": 1.23456, "g_loss": 0.5}) == {"d": "1.235", "g": "0.500"}
