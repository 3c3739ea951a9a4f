"""Streamlit caches for the viewer, keyed by file identity and content hash.

No cached function takes an array: Streamlit hashes large arrays by sampling, so two
volumes that differ outside the sample would share an entry.  Volumes are keyed by
(path, size, mtime_ns, sha256) and slices by that key plus plane, index and window.
"""

from __future__ import annotations

import io
import json

import numpy as np
import streamlit as st
from PIL import Image

from medgan.review.real_scans import load_real_scan
from medgan.review.volumes import DisplayVolume, VolumeKey, load_display_volume, slice_plane, to_uint8, window_bounds

__all__ = ["cached_volume", "cached_window", "cached_slice_png", "cached_real_volume", "encode_png"]

MIN_DISPLAY_PIXELS = 256


@st.cache_resource(max_entries=8, show_spinner="Loading volume")
def cached_volume(path: str, size: int, mtime_ns: int, sha256: str) -> DisplayVolume:
    """Load a synthetic volume once per file content; the array is read-only and shared."""
    return load_display_volume(VolumeKey(path=path, size=size, mtime_ns=mtime_ns, sha256=sha256))


@st.cache_data(max_entries=256, show_spinner=False)
def cached_window(path: str, size: int, mtime_ns: int, sha256: str, modality: str, preset: str) -> tuple[float, float]:
    """Return a preset's window for one volume; percentiles are computed once per volume."""
    return window_bounds(cached_volume(path, size, mtime_ns, sha256).array, modality, preset)


@st.cache_data(max_entries=2048, show_spinner=False)
def cached_slice_png(path: str, size: int, mtime_ns: int, sha256: str, plane: str, index: int, low: float, high: float) -> bytes:
    """Render one windowed slice of a cached volume as PNG bytes."""
    volume = cached_volume(path, size, mtime_ns, sha256)
    return encode_png(volume, plane, index, low, high)


@st.cache_resource(max_entries=4, show_spinner="Loading the real scan")
def cached_real_volume(run_dir: str, scan_id: str, id_map_sha256: str, modality: str, preprocess_json: str) -> DisplayVolume:
    """Load a real scan once per (run, scan id, pseudonym-map content, profile)."""
    from pathlib import Path

    return load_real_scan(Path(run_dir), scan_id, modality, json.loads(preprocess_json) or None)


def encode_png(volume: DisplayVolume, plane: str, index: int, low: float, high: float) -> bytes:
    """Window one slice, stretch it to square millimetres and encode it as PNG."""
    pixels = to_uint8(slice_plane(volume.array, plane, index), low, high)  # (rows, columns)
    spacing = {"axial": (volume.zooms[1], volume.zooms[0]), "coronal": (volume.zooms[2], volume.zooms[0]), "sagittal": (volume.zooms[2], volume.zooms[1])}[plane]
    height_mm, width_mm = pixels.shape[0] * spacing[0], pixels.shape[1] * spacing[1]
    scale = MIN_DISPLAY_PIXELS / max(min(height_mm, width_mm), 1e-6)
    target = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    image = Image.fromarray(np.ascontiguousarray(pixels), mode="L").resize(target, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
