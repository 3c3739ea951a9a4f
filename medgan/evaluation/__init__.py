"""Fidelity, memorization, membership-inference and utility evaluation of synthetic scans.

Entry points: :func:`evaluate_sets` computes the report sections and
:func:`medgan.evaluation.html.render_evaluation_html` renders them.
"""

from medgan.evaluation.config import EvaluationConfig
from medgan.evaluation.evaluate import evaluate_sets

__all__ = ["EvaluationConfig", "evaluate_sets"]
