"""The report's privacy section: recomputed epsilon, null for infinity, loud non-private label."""

from __future__ import annotations

import json

import pytest

from medgan.errors import PrivacyError
from medgan.privacy.accounting import compute_epsilon
from medgan.privacy.preflight import NOT_PRIVATE_WARNING
from medgan.privacy.report import privacy_section

SCHEMA_KEYS = {
    "private", "epsilon", "delta", "accountant", "epsilon_prv", "epsilon_rdp", "noise_multiplier",
    "sample_rate", "steps", "max_grad_norm", "unit", "n_patients", "noise_to_signal", "cohort_key",
    "cohort_epsilon_total", "warnings",
}
HISTORY = [(1.0, 0.05, 120), (1.0, 0.05, 80)]


def private_section(**overrides):
    arguments = dict(private=True, history=HISTORY, delta=1e-5, n_patients=1000, max_grad_norm=1.0)
    arguments.update(overrides)
    return privacy_section(**arguments)


def test_section_has_schema_keys():
    assert SCHEMA_KEYS <= set(private_section())


def test_epsilon_equals_fresh_accountant():
    fresh = compute_epsilon([(1.0, 0.05, 200)], 1e-5)
    section = private_section()
    assert section["epsilon"] == fresh.epsilon
    assert section["epsilon_prv"] == fresh.epsilon_prv
    assert section["epsilon_rdp"] == fresh.epsilon_rdp
    assert section["accountant"] == "prv"


def test_section_counts_all_steps():
    assert private_section()["steps"] == 200


def test_section_unit_is_patient():
    assert private_section()["unit"] == "patient"


def test_noise_to_signal_from_expected_batch():
    # 0.05 * 1000 patients = 50 per batch; 1.0 / 50.
    assert private_section()["noise_to_signal"] == pytest.approx(0.02)


def test_section_is_strict_json():
    json.dumps(private_section(), allow_nan=False)


def test_non_private_section():
    section = privacy_section(private=False, history=[], delta=None, n_patients=20, max_grad_norm=None)
    assert section["private"] is False
    assert section["epsilon"] is None
    assert section["warnings"][0] == NOT_PRIVATE_WARNING
    assert "NOT PRIVATE" in json.dumps(section, allow_nan=False)


def test_zero_noise_section_null_epsilon():
    section = private_section(history=[(0.0, 0.05, 10)])
    assert section["epsilon"] is None
    assert section["warnings"][0].startswith("NO PRIVACY GUARANTEE")
    json.dumps(section, allow_nan=False)


def test_rdp_section_reports_rdp():
    section = private_section(accountant="rdp")
    assert section["accountant"] == "rdp"
    assert section["epsilon"] == section["epsilon_rdp"]


def test_prv_fallback_reported():
    section = private_section(history=[(1.0, 0.05, 200)], delta=1e-15)
    assert section["accountant"] == "rdp"
    assert section["epsilon_prv"] is None
    assert any("Fell back to the RDP accountant" in message for message in section["warnings"])


def test_changed_noise_noted():
    section = private_section(history=[(1.0, 0.05, 100), (2.0, 0.05, 100)])
    assert section["noise_multiplier"] == 2.0
    assert any("changed during the run" in message for message in section["warnings"])


def test_infinite_cohort_total_null():
    section = private_section(cohort_key="c" * 64, cohort_epsilon_total=float("inf"))
    assert section["cohort_epsilon_total"] is None


def test_private_without_delta_rejected():
    with pytest.raises(PrivacyError, match="delta"):
        private_section(delta=None)


def test_report_matches_opacus_stepped_accountant(tmp_path):
    # The report, built from the step log, equals Opacus' PRV accountant stepped once per step.
    from opacus.accountants import PRVAccountant

    from medgan.privacy.wal import StepLedger

    log = StepLedger(tmp_path / "steps.jsonl")
    accountant = PRVAccountant()
    for step in range(30):
        noise = 1.0 if step < 20 else 1.5
        log.append(step, noise, 0.1)
        accountant.step(noise_multiplier=noise, sample_rate=0.1)
    section = private_section(history=log.history(), n_patients=200)
    assert section["epsilon"] == accountant.get_epsilon(1e-5)
    assert section["steps"] == 30
