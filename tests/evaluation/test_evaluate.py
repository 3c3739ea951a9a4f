"""evaluate_sets on quickstart-sized sets and edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from .phantoms import make_phantoms

from medgan.errors import InputError
from medgan.evaluation import EvaluationConfig, evaluate_sets
from medgan.evaluation.html import render_evaluation_html

CONFIG = EvaluationConfig(n_bootstrap=20, utility_epochs=2)


@pytest.fixture(scope="module")
def quickstart_result(tmp_path_factory):
    from .conftest import as_scans

    volumes = make_phantoms(17, 16, 0)
    train = as_scans(volumes[:7], "train")
    holdout = as_scans(volumes[7:9], "holdout", offset=7)
    synthetic_volumes = volumes[9:].copy()
    synthetic_volumes[0] = volumes[0]
    synthetic = as_scans(synthetic_volumes, "synthetic")
    private = tmp_path_factory.mktemp("private")
    result = evaluate_sets(train, holdout, synthetic, CONFIG, private_dir=private, progress=False)
    return result, private


def test_evaluate_sections_present(quickstart_result):
    result, _ = quickstart_result
    assert set(result) == {"evaluation", "fidelity", "memorization", "attack", "utility"}


def test_evaluate_strict_json(quickstart_result):
    result, _ = quickstart_result
    json.dumps(result, allow_nan=False)


def test_evaluate_extractor_recorded(quickstart_result):
    result, _ = quickstart_result
    assert result["evaluation"]["extractor"]["name"] == "medgan-encoder3d"


def test_evaluate_exact_copy_flagged(quickstart_result):
    result, _ = quickstart_result
    assert [entry["synthetic"] for entry in result["memorization"]["flagged"]] == ["syn-0000.nii.gz"]


def test_evaluate_flag_names_train_scan(quickstart_result):
    result, _ = quickstart_result
    assert result["memorization"]["flagged"][0]["nearest_train"] == "scan-000000000000"


def test_evaluate_small_holdout_fid_not_computable(quickstart_result):
    result, _ = quickstart_result
    assert result["fidelity"]["fid"]["holdout_vs_train"]["status"] == "not computable"


def test_evaluate_small_holdout_attack_not_computable(quickstart_result):
    result, _ = quickstart_result
    assert result["attack"]["tpr_at_1pct_fpr"]["status"] == "not computable"


def test_evaluate_private_distances_written(quickstart_result):
    _, private = quickstart_result
    assert (private / "nearest.json").is_file()


def test_evaluate_private_preview_written(quickstart_result):
    _, private = quickstart_result
    assert (private / "nearest-syn-0000.png").is_file()


def test_evaluate_html_has_plots(quickstart_result):
    result, _ = quickstart_result
    assert "data:image/png;base64," in render_evaluation_html(result)


def test_evaluate_id_changes_with_config(scans_from):
    volumes = make_phantoms(6, 16, 0)
    train, holdout, synthetic = scans_from(volumes[:2], "train"), scans_from(volumes[2:4], "holdout", offset=2), scans_from(volumes[4:], "synthetic")
    first = evaluate_sets(train, holdout, synthetic, CONFIG, progress=False)["evaluation"]["id"]
    second = evaluate_sets(train, holdout, synthetic, CONFIG.model_copy(update={"seed": 1}), progress=False)["evaluation"]["id"]
    assert first != second


def test_evaluate_constant_synthetic_finite(scans_from):
    volumes = make_phantoms(8, 16, 0)
    constant = np.full((6, 1, 16, 16, 16), -1.0, dtype=np.float32)
    result = evaluate_sets(
        scans_from(volumes[:6], "train"), scans_from(volumes[6:], "holdout", offset=6), scans_from(constant, "synthetic"), CONFIG, progress=False
    )
    json.dumps(result, allow_nan=False)


def test_evaluate_empty_holdout_raises(scans_from):
    volumes = make_phantoms(4, 16, 0)
    with pytest.raises(InputError, match="holdout set is empty"):
        evaluate_sets(scans_from(volumes[:2], "train"), [], scans_from(volumes[2:], "synthetic"), CONFIG, progress=False)


def test_evaluate_grid_mismatch_raises(scans_from):
    with pytest.raises(InputError, match="share one grid"):
        evaluate_sets(
            scans_from(make_phantoms(2, 16, 0), "train"),
            scans_from(make_phantoms(2, 16, 1), "holdout"),
            scans_from(make_phantoms(2, 8, 2), "synthetic"),
            CONFIG,
            progress=False,
        )


def test_evaluate_nan_voxel_raises(scans_from):
    synthetic = make_phantoms(2, 16, 2)
    synthetic[1, 0, 3, 3, 3] = np.nan
    with pytest.raises(InputError, match="syn-0001.nii.gz"):
        evaluate_sets(
            scans_from(make_phantoms(2, 16, 0), "train"), scans_from(make_phantoms(2, 16, 1), "holdout"), scans_from(synthetic, "synthetic"), CONFIG, progress=False
        )


def test_evaluate_duplicate_holdout_left_out(scans_from):
    volumes = make_phantoms(12, 16, 0)
    holdout = np.concatenate([volumes[:1], volumes[6:8]])  # the first holdout scan duplicates a training scan
    synthetic = volumes[8:].copy()
    synthetic[0] = volumes[1]
    result = evaluate_sets(
        scans_from(volumes[:6], "train"), scans_from(holdout, "holdout", offset=20), scans_from(synthetic, "synthetic"), CONFIG, progress=False
    )
    assert result["memorization"]["threshold"]["excluded_duplicates"] == ["scan-000000000014"]


def test_evaluate_duplicate_holdout_copy_still_flagged(scans_from):
    volumes = make_phantoms(12, 16, 0)
    holdout = np.concatenate([volumes[:1], volumes[6:8]])
    synthetic = volumes[8:].copy()
    synthetic[0] = volumes[1]
    result = evaluate_sets(
        scans_from(volumes[:6], "train"), scans_from(holdout, "holdout", offset=20), scans_from(synthetic, "synthetic"), CONFIG, progress=False
    )
    assert [entry["synthetic"] for entry in result["memorization"]["flagged"]] == ["syn-0000.nii.gz"]


def test_evaluate_all_holdout_duplicates_raises(scans_from):
    volumes = make_phantoms(6, 16, 0)
    with pytest.raises(InputError, match="every calibration holdout scan is a copy"):
        evaluate_sets(scans_from(volumes[:4], "train"), scans_from(volumes[:2], "holdout", offset=20), scans_from(volumes[4:], "synthetic"), CONFIG, progress=False)
