"""Scan viewer: three orthogonal planes, window presets, and the nearest training scan beside each slice."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import streamlit as st
from ui_cache import cached_real_volume, cached_slice_png, cached_volume, cached_window, encode_png
from ui_common import RunContext, memorization_entry, scan_modality, synthetic_key

from medgan.errors import MedganError
from medgan.review.paths import resolve_inside
from medgan.review.real_scans import id_map_digest
from medgan.review.registry import Identity
from medgan.review.volumes import PLANES, WINDOW_PRESETS, DisplayVolume, plane_length, window_bounds

__all__ = ["render_viewer", "load_real_display", "real_slice_png"]

logger = logging.getLogger(__name__)

IMAGE_WIDTH = 320
"""Display width of every slice in CSS pixels, so compared slices have the same scale."""


def load_real_display(context: RunContext, scan_id: str, modality: str) -> DisplayVolume | None:
    """Load a real scan (nearest training or holdout) through the cache, or show why it is unavailable."""
    preprocess = (context.report.get("config") or {}).get("preprocess") or (context.report.get("data") or {}).get("profile") or {}
    try:
        return cached_real_volume(str(context.path), scan_id, id_map_digest(context.path), modality, json.dumps(preprocess, sort_keys=True))
    except MedganError as error:
        st.warning(f"Real scan unavailable: {error}")
    except Exception as error:  # noqa: BLE001 - never show a traceback that may name a site path
        logger.warning("loading real scan %s failed: %s", scan_id, type(error).__name__)
        st.warning(f"Real scan unavailable ({type(error).__name__}); see the dashboard log.")
    return None


def real_slice_png(volume: DisplayVolume, plane: str, fraction: float, modality: str, preset: str) -> bytes:
    """Render the slice of a real scan at the same relative position as the synthetic one."""
    length = plane_length(volume.array.shape, plane)
    index = min(length - 1, max(0, round(fraction * (length - 1))))
    low, high = window_bounds(volume.array, modality, preset)
    return encode_png(volume, plane, index, low, high)


def render_viewer(context: RunContext, identity: Identity | None, file: str, prefix: str = "viewer") -> None:
    """Show one synthetic scan in three planes, with its nearest training scan for signed-in reviewers."""
    entry = next((item for item in context.synthetic if item.get("file") == file), {})
    try:
        key = synthetic_key(context, file)
        volume = cached_volume(key.path, key.size, key.mtime_ns, key.sha256)
    except MedganError as error:
        st.error(str(error))
        return

    labels = entry.get("labels")
    st.markdown(f"**Condition:** `{json.dumps(labels) if isinstance(labels, dict) else labels}` · shape {volume.array.shape} · voxel {volume.zooms} mm")
    if entry.get("sha256") and entry["sha256"] != key.sha256:
        st.error(f"{file} changed after the evaluation (its SHA-256 no longer matches report.json); decisions on it are disabled until the run is re-evaluated.")
    if volume.non_finite:
        st.warning(f"{volume.non_finite} non-finite voxels are shown as the minimum value.")
    memorization = memorization_entry(context.report, file)
    if memorization is not None:
        similarity = memorization.get("similarity")
        text = f"nearest training scan {memorization.get('nearest_train')}, similarity {similarity:.3f}" if isinstance(similarity, (int, float)) else "no similarity recorded"
        threshold = memorization.get("threshold")
        text += f" (threshold {threshold:.3f})" if isinstance(threshold, (int, float)) else ""
        if memorization.get("flagged"):
            st.error(f"FLAGGED by the memorization check: {text}.")
        else:
            st.info(f"Not flagged: {text}.")

    modality, modality_source = scan_modality(context.report, file)
    if modality_source != "recorded":
        st.caption(f"Modality {modality}: {modality_source}; change it below if it is wrong, because it sets the window presets and how the real scan is normalised.")
    controls = st.columns(2)
    modality = controls[0].selectbox("Modality", list(WINDOW_PRESETS), index=list(WINDOW_PRESETS).index(modality), key=f"{prefix}_modality")
    preset = controls[1].selectbox("Window / level", list(WINDOW_PRESETS[modality]), key=f"{prefix}_window_{modality}")
    low, high = cached_window(key.path, key.size, key.mtime_ns, key.sha256, modality, preset)

    nearest = None
    nearest_id = (memorization or {}).get("nearest_train")
    if identity is None:
        st.info("Sign in to see the nearest training scan beside each slice.")
    elif nearest_id:
        nearest = load_real_display(context, str(nearest_id), modality)
        if nearest is None:
            _evaluation_preview(context, file)

    if nearest is None:
        # Nothing to compare with: the three planes side by side.
        for column, plane in zip(st.columns(3), PLANES):
            with column:
                index = _plane_slider(volume, plane, prefix)
                st.image(cached_slice_png(key.path, key.size, key.mtime_ns, key.sha256, plane, index, low, high), caption=f"synthetic {file}, {plane} {index}", width=IMAGE_WIDTH)
        return
    for plane in PLANES:
        index = _plane_slider(volume, plane, prefix)
        left, right = st.columns(2)
        left.image(cached_slice_png(key.path, key.size, key.mtime_ns, key.sha256, plane, index, low, high), caption=f"synthetic {file}, {plane} {index}", width=IMAGE_WIDTH)
        fraction = index / max(plane_length(volume.array.shape, plane) - 1, 1)
        right.image(real_slice_png(nearest, plane, fraction, modality, preset), caption=f"nearest training scan {nearest_id}, {plane} (reviewers only)", width=IMAGE_WIDTH)


def _evaluation_preview(context: RunContext, file: str) -> None:
    # The evaluation stage's fixed mid-slice preview, when the real scan itself cannot be loaded.
    try:
        preview = resolve_inside(context.runs_root, f"{context.name}/private/evaluation/nearest-{Path(file).name.split('.')[0]}.png")
    except MedganError:
        return
    if preview.is_file():
        st.image(preview.read_bytes(), caption="evaluation preview: synthetic mid-slices above the nearest training scan (reviewers only)")


def _plane_slider(volume: DisplayVolume, plane: str, prefix: str) -> int:
    length = plane_length(volume.array.shape, plane)
    return st.slider(f"{plane.capitalize()} slice", 0, length - 1, length // 2, key=f"{prefix}_{plane}")
