"""HTML rendering of evaluation results."""

from __future__ import annotations

from medgan.evaluation.html import render_evaluation_html, render_evaluation_page

RESULT = {
    "evaluation": {"id": "abc", "extractor": {"name": "medgan-encoder3d", "version": "1", "sha256": "f" * 64}, "counts": {"train": 7}},
    "fidelity": {
        "fid": {
            "synthetic_vs_train": {"value": 2.5, "ci_low": 2.0, "ci_high": 3.0},
            "holdout_vs_train": {"value": None, "status": "not computable", "reason": "needs at least 5 scans in each set", "counts": {"query": 2}},
        }
    },
    "memorization": {
        "flagged": [{"synthetic": "syn-0001.nii.gz", "nearest_train": "scan-0123456789ab", "similarity": 0.999, "threshold": 0.98}],
        "per_scan": [{"synthetic": "syn-0001.nii.gz", "similarity_train": 0.999}, {"synthetic": "syn-0002.nii.gz", "similarity_train": 0.9}],
        "rule": "flag <when> & below",
        "threshold": {"similarity_threshold": 0.98, "holdout_distances": [0.05, 0.08]},
    },
    "attack": {"mia_auc": {"value": 0.52, "ci_low": 0.4, "ci_high": 0.6}, "tpr_at_1pct_fpr": {"value": None, "status": "not computable", "reason": "r", "counts": {"nonmembers": 2}}, "statement": "evidence, not a guarantee"},
    "utility": {"status": "skipped", "reason": "the scans carry no labels"},
}


def test_html_interval_shown():
    assert "2.5 [2, 3]" in render_evaluation_html(RESULT)


def test_html_not_computable_reason_shown():
    assert "not computable</em>: needs at least 5 scans" in render_evaluation_html(RESULT)


def test_html_rule_escaped():
    assert "flag &lt;when&gt; &amp; below" in render_evaluation_html(RESULT)


def test_html_flagged_row():
    assert "<td>scan-0123456789ab</td>" in render_evaluation_html(RESULT)


def test_html_two_plots():
    assert render_evaluation_html(RESULT).count("data:image/png;base64,") == 2


def test_html_page_complete():
    page = render_evaluation_page(RESULT)
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
