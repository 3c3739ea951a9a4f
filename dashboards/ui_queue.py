"""Review queue: approve or reject each synthetic scan with a reason, flagged scans first."""

from __future__ import annotations

import logging

import streamlit as st
from ui_common import RunContext, synthetic_key
from ui_viewer import render_viewer

from medgan.errors import MedganError, ReviewError
from medgan.review.approvals import ScanState, record_decision, scan_states
from medgan.review.registry import Identity

__all__ = ["render_queue"]

logger = logging.getLogger(__name__)


def _decide(context: RunContext, identity: Identity, state: ScanState, decision: str, reason_key: str) -> None:
    # Runs as a button callback, before the page is drawn again.
    reason = st.session_state.get(reason_key, "")
    try:
        current = synthetic_key(context, state.file).sha256
        if current != state.sha256:
            raise ReviewError(f"{state.file} changed after the evaluation, so a decision on it would not match report.json; re-run `medgan evaluate`")
        record_decision(
            context.path,
            reviewer=identity.name,
            role=identity.role,
            identity_source=identity.source,
            scan_file=state.file,
            scan_sha256=state.sha256,
            evaluation_id=str(context.evaluation_id),
            decision=decision,
            reason=reason,
            flagged=state.flagged,
        )
    except MedganError as error:
        st.session_state["queue_message"] = ("error", str(error))
        return
    st.session_state["queue_message"] = ("success", f"Recorded: {decision} {state.file}.")
    st.session_state[reason_key] = ""


def _step(files: list[str], offset: int) -> None:
    current = st.session_state.get("queue_scan", files[0])
    position = files.index(current) if current in files else 0
    st.session_state["queue_scan"] = files[(position + offset) % len(files)]


def _describe(state: ScanState) -> str:
    if state.decision is None:
        return ""
    text = f"{state.decision.decision} by {state.decision.reviewer} ({state.decision.time_utc[:19]}Z): {state.decision.reason}"
    if state.override is not None:
        text += f"; flag overridden by {state.override.reviewer}: {state.override.reason}"
    return text


def render_queue(context: RunContext, identity: Identity | None) -> None:
    """Show the decision table and the controls for the selected scan."""
    if identity is None:
        st.warning("Sign in to review scans: decisions are recorded under your identity.")
        return
    if not context.evaluation_id:
        st.error("report.json has no evaluation id, so decisions could not be bound to an evaluation; run `medgan evaluate` first.")
        return
    try:
        states = scan_states(context.path, context.evaluation_id, context.report)
    except MedganError as error:
        st.error(str(error))
        return
    if not states:
        st.info("This run has no synthetic scans.")
        return

    st.dataframe(
        [{"scan": state.file, "flagged": state.flagged, "status": state.status, "decision": _describe(state)} for state in states],
        hide_index=True,
        key="queue_table",
    )
    message = st.session_state.pop("queue_message", None)
    if message:
        getattr(st, message[0])(message[1])

    files = [state.file for state in states]
    if st.session_state.get("queue_scan") not in files:
        pending = [state.file for state in states if state.status in ("pending", "awaiting override")]
        st.session_state["queue_scan"] = (pending or files)[0]
    navigation = st.columns([1, 1, 4])
    navigation[0].button("Previous", key="queue_previous", on_click=_step, args=(files, -1))
    navigation[1].button("Next", key="queue_next", on_click=_step, args=(files, 1))
    file = navigation[2].selectbox("Scan", files, key="queue_scan")
    state = states[files.index(file)]

    st.markdown(f"**{state.file}** · status **{state.status}** · SHA-256 `{state.sha256[:16]}…` · evaluation `{context.evaluation_id}`")
    reason_key = f"reason_{state.sha256}"
    st.text_area("Reason (required)", key=reason_key)
    buttons = st.columns(2)
    buttons[0].button("Approve", key="approve", on_click=_decide, args=(context, identity, state, "approve", reason_key), type="primary")
    buttons[1].button("Reject", key="reject", on_click=_decide, args=(context, identity, state, "reject", reason_key))
    if state.flagged:
        if state.status == "awaiting override":
            if identity.role == "privacy-officer" and state.decision is not None and state.decision.reviewer != identity.name:
                override_key = f"override_reason_{state.sha256}"
                st.text_area("Why this flagged scan may be released (privacy officer)", key=override_key)
                st.button("Override memorization flag", key="override", on_click=_decide, args=(context, identity, state, "override", override_key))
            else:
                st.info("Approved, but flagged by the memorization check: a second reviewer with the privacy-officer role must override the flag before it can be exported.")
        elif state.status == "pending":
            st.info("Flagged scan: after an approval, a second reviewer with the privacy-officer role must override the flag.")

    with st.expander("Scan", expanded=True):
        render_viewer(context, identity, state.file, prefix="queue")
