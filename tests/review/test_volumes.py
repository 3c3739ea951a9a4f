from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from .conftest import write_volume

from medgan.errors import InputError
from medgan.review.volumes import load_display_volume, slice_plane, to_uint8, volume_key, window_bounds


def _volume() -> np.ndarray:
    return np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # (X, Y, Z)


def test_axial_orientation() -> None:
    plane = slice_plane(_volume(), "axial", 2)
    # Row 0 is the most anterior Y, column 0 the patient's right (largest X).
    assert plane.shape == (5, 4)
    assert plane[0, 0] == _volume()[3, 4, 2]


def test_coronal_orientation() -> None:
    plane = slice_plane(_volume(), "coronal", 1)
    assert plane.shape == (6, 4)
    assert plane[0, 0] == _volume()[3, 1, 5]


def test_sagittal_orientation() -> None:
    plane = slice_plane(_volume(), "sagittal", 0)
    assert plane.shape == (6, 5)
    assert plane[0, 0] == _volume()[0, 4, 5]


def test_slice_out_of_range() -> None:
    with pytest.raises(InputError, match="axial slice 6 is outside 0..5"):
        slice_plane(_volume(), "axial", 6)


def test_window_constant_volume() -> None:
    low, high = window_bounds(np.full((4, 4, 4), 100.0, dtype=np.float32), "MR", "auto (1-99th percentile)")
    assert (low, high) == (99.5, 100.5)


def test_window_ct_preset() -> None:
    assert window_bounds(_volume(), "CT", "lung (W1500 L-600)") == (-1350.0, 150.0)


def test_window_unknown_preset() -> None:
    with pytest.raises(InputError, match="lung"):
        window_bounds(_volume(), "MR", "lung (W1500 L-600)")


def test_to_uint8_clips() -> None:
    assert to_uint8(np.array([[-10.0, 0.0, 5.0, 10.0, 20.0]]), 0.0, 10.0).tolist() == [[0, 0, 128, 255, 255]]


def test_load_reorients_to_ras(tmp_path: Path) -> None:
    array = _volume()
    path = tmp_path / "las.nii.gz"
    # An LAS file: voxel i grows toward the patient's left.
    nib.save(nib.Nifti1Image(array, np.diag([-1.0, 1.0, 1.0, 1.0])), str(path))
    loaded = load_display_volume(volume_key(path)).array
    assert loaded[0, 0, 0] == array[3, 0, 0]


def test_load_replaces_non_finite(tmp_path: Path) -> None:
    array = np.ones((4, 4, 4), dtype=np.float32)
    array[0, 0, :3] = np.nan
    write_volume(tmp_path / "x.nii.gz", array)
    volume = load_display_volume(volume_key(tmp_path / "x.nii.gz"))
    assert volume.non_finite == 3
    assert np.isfinite(volume.array).all()


def test_load_not_nifti(tmp_path: Path) -> None:
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="broken.nii.gz is not a readable NIfTI"):
        load_display_volume(volume_key(path))
