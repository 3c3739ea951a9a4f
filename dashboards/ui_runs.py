"""Run browser: privacy ledger, fidelity and memorization summaries, plots and configuration."""

from __future__ import annotations

import json
import math
from pathlib import Path

import streamlit as st
from ui_common import RunContext, format_interval, similarity_threshold

from medgan.review.approvals import audit_log_path, flagged_files, scan_states
from medgan.review.audit import AuditLog
from medgan.review.registry import Identity
from medgan.review.trainlog import read_safe_curves

__all__ = ["render_run_table", "render_run"]


def render_run_table(rows: list[tuple[str, dict]]) -> None:
    """Show one line per run: privacy, evaluation and how many scans are flagged."""
    table = []
    for name, report in rows:
        privacy = report.get("privacy") or {}
        table.append(
            {
                "run": name,
                "private": "yes" if privacy.get("private") else "NOT PRIVATE",
                "epsilon": privacy.get("epsilon"),
                "delta": privacy.get("delta"),
                "synthetic scans": len(report.get("synthetic") or []),
                "flagged": len(flagged_files(report)),
                "evaluation": (report.get("evaluation") or {}).get("id"),
            }
        )
    st.dataframe(table, hide_index=True, key="runs_table")


def _privacy_ledger(report: dict) -> None:
    privacy = report.get("privacy") or {}
    if not privacy.get("private"):
        st.error(
            "NOT PRIVATE: this run was trained without differential privacy. Its synthetic scans carry no privacy guarantee "
            "and may reproduce training patients; they must not leave the site."
        )
    columns = st.columns(4)
    columns[0].metric("epsilon", format_interval(privacy.get("epsilon")) if privacy.get("epsilon") is not None else "none")
    columns[1].metric("delta", f"{privacy['delta']:.1e}" if isinstance(privacy.get("delta"), (int, float)) else "none")
    columns[2].metric("accountant", str(privacy.get("accountant") or "none"))
    columns[3].metric("cohort epsilon so far", format_interval(privacy.get("cohort_epsilon_total")) if privacy.get("cohort_epsilon_total") is not None else "none")
    details = {key: privacy[key] for key in ("noise_multiplier", "sample_rate", "steps", "max_grad_norm", "unit", "n_patients", "noise_to_signal", "epsilon_prv", "epsilon_rdp") if key in privacy}
    if details:
        st.caption(" · ".join(f"{key} {format_interval(value)}" for key, value in details.items()))
    for warning in privacy.get("warnings") or []:
        st.warning(str(warning))


def _is_metric(value: object) -> bool:
    return isinstance(value, dict) and any(key in value for key in ("value", "mean", "estimate"))


def _metric_table(section: dict) -> list[dict]:
    """Flatten a report section into rows of metric, comparison, value with interval, and note.

    Metrics are either ``{value, ci_low, ci_high}`` dicts or dicts of comparisons
    (``synthetic_vs_train``, ``holdout_vs_train``) that hold such values.  The holdout
    comparison is the noise floor that a synthetic value is read against.
    """
    rows = []
    for name, value in section.items():
        if _is_metric(value):
            rows.append({"metric": name, "comparison": "", "value [95% CI]": format_interval(value), "note": _note(value)})
        elif isinstance(value, dict):
            for comparison, inner in value.items():
                if _is_metric(inner):
                    rows.append({"metric": name, "comparison": comparison.replace("_", " "), "value [95% CI]": format_interval(inner), "note": _note(inner)})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append({"metric": name, "comparison": "", "value [95% CI]": format_interval(value), "note": ""})
    return rows


def _note(metric: dict) -> str:
    if metric.get("value") is None and metric.get("reason"):
        return f"{metric.get('status', 'not computable')}: {metric['reason']}"
    return str(metric.get("note", ""))


def _similarity_histogram(report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    memorization = report.get("memorization") or {}
    values = []
    for row in memorization.get("per_scan") or []:
        similarity = row.get("similarity", row.get("similarity_train"))
        if isinstance(similarity, (int, float)) and math.isfinite(similarity):
            values.append(float(similarity))
    if not values:
        st.caption("No per-scan similarities in report.json.")
        return
    figure, axis = plt.subplots(figsize=(6, 2.5))
    axis.hist(values, bins=min(30, max(5, len(values))), color="#4c72b0")
    threshold = similarity_threshold(memorization)
    if threshold is not None:
        axis.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:g}")
        axis.legend()
    axis.set_xlabel("similarity to the nearest training scan")
    axis.set_ylabel("synthetic scans")
    figure.tight_layout()
    st.pyplot(figure, width=640)
    plt.close(figure)


def _review_summary(context: RunContext) -> None:
    """Show the audit log's state and how many scans are approved, rejected or pending."""
    log = AuditLog(audit_log_path(context.path))
    if not log.exists():
        st.caption("No decisions recorded yet.")
        return
    problems = log.verify()
    if problems:
        st.error(f"The audit log failed verification, so none of its decisions count: {'; '.join(problems[:3])}")
        return
    n_rows = len(log.rows())
    st.success(f"Audit log intact: {n_rows} decision{'' if n_rows == 1 else 's'}, last hash {log.last_hash()[:16]}…")
    if context.evaluation_id:
        counts: dict[str, int] = {}
        for state in scan_states(context.path, context.evaluation_id, context.report):
            counts[state.status] = counts.get(state.status, 0) + 1
        st.markdown(" · ".join(f"{status}: {count}" for status, count in sorted(counts.items())))


def render_run(context: RunContext, identity: Identity | None) -> None:
    """Show one run's report sections."""
    report = context.report
    st.subheader(f"Run {context.name}")
    st.caption(f"created {report.get('created_utc', '?')} · medgan {report.get('medgan_version', '?')} · evaluation {context.evaluation_id}")

    st.markdown("#### Privacy ledger")
    _privacy_ledger(report)

    st.markdown("#### Fidelity")
    fidelity = _metric_table(report.get("fidelity") or {})
    st.dataframe(fidelity, hide_index=True, key="fidelity_table") if fidelity else st.caption("No fidelity metrics in report.json.")

    st.markdown("#### Memorization")
    memorization = report.get("memorization") or {}
    n_flagged = len(flagged_files(report))
    threshold = similarity_threshold(memorization)
    threshold_text = f"similarity threshold {threshold:.3f}" if threshold is not None else "no similarity threshold recorded"
    st.markdown(f"{n_flagged} of {len(report.get('synthetic') or [])} synthetic scans flagged ({threshold_text}).")
    if memorization.get("rule"):
        st.caption(f"Rule: {memorization['rule']}")
    ratio = memorization.get("distance_ratio")
    if isinstance(ratio, dict) and isinstance(ratio.get("value"), (int, float)):
        st.caption(f"Distance ratio {ratio['value']:.3f}: {ratio.get('definition', '')}")
    if memorization.get("blocks_release"):
        st.warning("The memorization check blocks release of this set until every flagged scan is rejected or overridden by a privacy officer.")
    _similarity_histogram(report)
    attack = report.get("attack") or {}
    if attack:
        st.dataframe(_metric_table(attack), hide_index=True, key="attack_table")

    st.markdown("#### Training curves")
    if identity is None:
        st.info("Sign in to see training curves (they come from the run's private folder).")
    else:
        curves = read_safe_curves(Path(context.path) / "private" / "train_log.jsonl")
        steps = curves.pop("step", None)
        if steps and curves:
            st.line_chart({name: values for name, values in curves.items()})
            st.caption("Generator loss and privacy spent only; discriminator losses on real scans are not shown.")
        else:
            st.caption("No training log.")

    st.markdown("#### Review")
    _review_summary(context)

    with st.expander("Configuration"):
        st.code(json.dumps(report.get("config") or {}, indent=2), language="json")
