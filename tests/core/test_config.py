"""Pipeline configuration: overrides, validation messages and public redaction."""

from __future__ import annotations

import pytest

from medgan.config import load_pipeline, public_config
from medgan.errors import ConfigError


def _pipeline(tmp_path, body: str):
    path = tmp_path / "pipe.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_manifest_resolves_against_pipeline_folder(tmp_path):
    config = load_pipeline(_pipeline(tmp_path, "data:\n  manifest: cohort/m.csv\n"))
    assert config.data.manifest == (tmp_path / "cohort" / "m.csv").resolve()


def test_override_sets_nested_value(tmp_path):
    config = load_pipeline(_pipeline(tmp_path, "data:\n  manifest: m.csv\n"), ["train.steps=7", "privacy.enabled=false"])
    assert config.train.steps == 7
    assert config.privacy.enabled is False


def test_unknown_option_suggests_name(tmp_path):
    path = _pipeline(tmp_path, "data:\n  manifest: m.csv\nprivacy:\n  noise_multipler: 1.0\n")
    with pytest.raises(ConfigError, match=r"privacy.noise_multipler: unknown option \(did you mean 'noise_multiplier'\?\)"):
        load_pipeline(path)


def test_invalid_value_names_option(tmp_path):
    path = _pipeline(tmp_path, "data:\n  manifest: m.csv\ntrain:\n  steps: 0\n")
    with pytest.raises(ConfigError, match=r"train.steps: .*got 0"):
        load_pipeline(path)


def test_malformed_override_rejected(tmp_path):
    with pytest.raises(ConfigError, match="not of the form"):
        load_pipeline(_pipeline(tmp_path, "data:\n  manifest: m.csv\n"), ["train.steps"])


def test_public_config_hides_paths(tmp_path):
    config = load_pipeline(_pipeline(tmp_path, "data:\n  manifest: /secret/site/cohort.csv\n"))
    public = public_config(config)
    assert public["data"]["manifest"] == "<site path>"
    assert "/secret" not in str(public)
    assert public["train"]["steps"] == config.train.steps


def test_public_config_withholds_seed(tmp_path):
    config = load_pipeline(_pipeline(tmp_path, "data:\n  manifest: m.csv\ntrain:\n  seed: 424242\n"))
    public = public_config(config)
    assert public["train"]["seed"] == "<withheld>"
    assert "424242" not in str(public)
