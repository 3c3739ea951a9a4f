"""Blinded reader study page: a shuffled mix of real holdout and synthetic scans, one guess each."""

from __future__ import annotations

import streamlit as st
from ui_cache import cached_slice_png, cached_volume, cached_window, encode_png
from ui_common import RunContext, modality_of, scan_modality, synthetic_key
from ui_viewer import load_real_display

from medgan.errors import MedganError
from medgan.review.reader_study import StudyItem, plan_study, reader_scores, record_guess
from medgan.review.real_scans import holdout_partner, real_scan_modality, scan_ids_in_split
from medgan.review.registry import Identity
from medgan.review.volumes import PLANES, plane_length, window_bounds

__all__ = ["render_reader_study"]

AUTO_WINDOW = "auto (1-99th percentile)"


def _start(context: RunContext) -> None:
    try:
        study_id, items = plan_study(scan_ids_in_split(context.path, "holdout"), [entry["file"] for entry in context.synthetic], int(st.session_state.get("study_size", 10)))
    except MedganError as error:
        st.session_state["study_message"] = str(error)
        return
    st.session_state["study"] = {"id": study_id, "items": items, "position": 0, "run": context.name}


def _submit(context: RunContext, identity: Identity) -> None:
    study = st.session_state["study"]
    item = study["items"][study["position"]]
    try:
        record_guess(context.path, study_id=study["id"], reader=identity.name, identity_source=identity.source, item=item, guess=st.session_state["study_guess"], confidence=int(st.session_state["study_confidence"]))
    except MedganError as error:
        st.session_state["study_message"] = str(error)
        return
    study["position"] += 1


def _show_item(context: RunContext, item: StudyItem, position: int) -> None:
    if item.truth == "synthetic":
        modality = scan_modality(context.report, item.reference)[0]
        key = synthetic_key(context, item.reference)
        volume = cached_volume(key.path, key.size, key.mtime_ns, key.sha256)
        low, high = cached_window(key.path, key.size, key.mtime_ns, key.sha256, modality, AUTO_WINDOW)
    else:
        # A real scan normalised with the wrong modality would look different and reveal which scans are real.
        partner = holdout_partner(context.path, item.reference)
        modality = real_scan_modality(context.path, item.reference) or (scan_modality(context.report, partner)[0] if partner else modality_of(context.report))
        volume = load_real_display(context, item.reference, modality)
        if volume is None:
            return
        low, high = window_bounds(volume.array, modality, AUTO_WINDOW)
    # Captions carry no file name or id, so nothing on screen reveals whether a scan is real.
    for column, plane in zip(st.columns(3), PLANES):
        length = plane_length(volume.array.shape, plane)
        # Keys include the position, so each scan opens at its middle slices.
        index = column.slider(plane.capitalize(), 0, length - 1, length // 2, key=f"study_{position}_{plane}")
        if item.truth == "synthetic":
            image = cached_slice_png(key.path, key.size, key.mtime_ns, key.sha256, plane, index, low, high)
        else:
            image = encode_png(volume, plane, index, low, high)
        column.image(image, caption=plane, width=320)


def render_reader_study(context: RunContext, identity: Identity | None) -> None:
    """Run a blinded study for the signed-in reader and show every reader's accuracy."""
    if identity is None:
        st.warning("Sign in to take part in the reader study: guesses are recorded under your identity.")
        return
    message = st.session_state.pop("study_message", None)
    if message:
        st.error(message)
    study = st.session_state.get("study")
    if study is None or study["run"] != context.name:
        st.number_input("Scans of each kind", min_value=1, max_value=100, value=10, key="study_size")
        st.button("Start a blinded study", key="study_start", on_click=_start, args=(context,))
    elif study["position"] >= len(study["items"]):
        st.success(f"Study finished: {len(study['items'])} guesses recorded.")
        st.button("Start another study", key="study_restart", on_click=_start, args=(context,))
    else:
        st.markdown(f"Scan {study['position'] + 1} of {len(study['items'])}: is it real or synthetic?")
        _show_item(context, study["items"][study["position"]], study["position"])
        st.radio("Your guess", ["real", "synthetic"], key="study_guess", horizontal=True)
        st.slider("Confidence (1 = guessing, 5 = certain)", 1, 5, 3, key="study_confidence")
        st.button("Submit guess", key="study_submit", on_click=_submit, args=(context, identity))

    scores = reader_scores(context.path)
    if scores:
        st.markdown("#### Reader accuracy (95% Wilson interval)")
        st.dataframe(
            [{"reader": score.reader, "guesses": score.n, "correct": score.correct, "accuracy": f"{score.accuracy:.2f}", "95% CI": f"[{score.ci_low:.2f}, {score.ci_high:.2f}]"} for score in scores],
            hide_index=True,
            key="reader_scores",
        )
        st.caption("Accuracy near 0.5 means readers cannot tell synthetic scans from real ones.")
