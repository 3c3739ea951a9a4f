"""Simulated benchmark cohorts built from public anatomy (the ICBM152 template).

:func:`build_cohort` writes a deterministic cohort with a lesion condition and optional
canary patients; :func:`detect_canary` scores whether a volume shows the canary.
"""

from medgan.cohort.builder import CohortSpec, build_cohort, plan_cohort, read_cohort_info, render_patient
from medgan.cohort.canaries import canary_threshold, detect_canary
from medgan.cohort.template import load_template

__all__ = [
    "CohortSpec",
    "build_cohort",
    "plan_cohort",
    "render_patient",
    "read_cohort_info",
    "detect_canary",
    "canary_threshold",
    "load_template",
]
