"""The ``medgan privacy`` planning command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from medgan.cli.main import cli
from medgan.cli.privacy_cmd import planned_steps
from medgan.privacy.accounting import compute_epsilon


def invoke(*arguments: str):
    return CliRunner().invoke(cli, ["privacy", *arguments])


def test_planned_steps_rounds_up():
    assert planned_steps(25, 10, 1) == 3


def test_planned_steps_exact():
    assert planned_steps(1000, 50, 10) == 200


def test_noise_multiplier_json():
    result = invoke("--n", "1000", "--batch-size", "50", "--epochs", "10", "--noise-multiplier", "1.0", "--json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    fresh = compute_epsilon([(1.0, 0.05, 200)], 1e-5)
    assert payload["steps"] == 200
    assert payload["sample_rate"] == 0.05
    assert payload["epsilon_prv"] == fresh.epsilon_prv
    assert payload["epsilon_rdp"] == fresh.epsilon_rdp
    assert payload["noise_to_signal"] == pytest.approx(0.02)


def test_noise_multiplier_text():
    result = invoke("--n", "1000", "--batch-size", "50", "--epochs", "10", "--noise-multiplier", "1.0")
    assert result.exit_code == 0
    assert "Epsilon (PRV)               4.776" in result.output
    assert "Epsilon (RDP)               5.368" in result.output
    assert "Noise-to-signal             0.02 (noise multiplier / batch size)" in result.output


def test_hopeless_noise_warns():
    result = invoke("--n", "200", "--batch-size", "10", "--epochs", "1", "--noise-multiplier", "3.0")
    assert result.exit_code == 0
    assert "learning is hopeless" in result.output


def test_target_epsilon_gives_noise():
    result = invoke(
        "--n", "1000", "--batch-size", "50", "--epochs", "10", "--target-epsilon", "6", "--accountant", "rdp", "--json"
    )
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["epsilon"] <= 6.0
    assert payload["epsilon"] >= 6.0 * 0.99


def test_delta_above_inverse_n_error():
    result = invoke("--n", "20", "--batch-size", "10", "--epochs", "1", "--noise-multiplier", "1", "--delta", "0.1")
    assert result.exit_code == 2
    assert "Delta 0.1 is at least 1 / n_patients" in result.output


def test_unreachable_target_error():
    result = invoke("--n", "20", "--batch-size", "10", "--epochs", "1", "--target-epsilon", "0.1", "--accountant", "rdp")
    assert result.exit_code == 2
    assert "cannot be reached with 20 patients" in result.output


def test_both_options_error():
    result = invoke("--n", "20", "--batch-size", "5", "--epochs", "1", "--noise-multiplier", "1", "--target-epsilon", "2")
    assert result.exit_code == 2
    assert "exactly one of --noise-multiplier and --target-epsilon" in result.output


def test_batch_not_below_n_error():
    result = invoke("--n", "20", "--batch-size", "20", "--epochs", "1", "--noise-multiplier", "1")
    assert result.exit_code == 2
    assert "sample rate 1 >= 1" in result.output



ABSURD_PLANS = {
    "target-1e9": (("--epochs", "1", "--target-epsilon", "1e9"), "--target-epsilon 1e+09 is invalid"),
    "epochs-1e9": (("--epochs", "1e9", "--noise-multiplier", "1"), "10,000,000,000 steps, above the maximum"),
}


@pytest.mark.parametrize("name", sorted(ABSURD_PLANS))
def test_absurd_plan_exit_code(name):
    # Exit 2 is medgan's readable error; a traceback (the accountant's MemoryError) exits 1.
    result = invoke("--n", "100", "--batch-size", "10", *ABSURD_PLANS[name][0])
    assert result.exit_code == 2


@pytest.mark.parametrize("name", sorted(ABSURD_PLANS))
def test_absurd_plan_message(name):
    arguments, message = ABSURD_PLANS[name]
    assert message in invoke("--n", "100", "--batch-size", "10", *arguments).output
