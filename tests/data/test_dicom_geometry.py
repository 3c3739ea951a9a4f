"""DICOM slice ordering, spacing and geometry rejection."""

from __future__ import annotations

import random

import numpy as np
import pytest
from .ingest_fixtures import AXIAL, CORONAL, SAGITTAL, lps_to_ras, make_slice, write, write_series

from medgan.data.reader import load_volume
from medgan.errors import InputError


def test_axial_affine_exact(tmp_path, ramp):
    write_series(tmp_path / "s", ramp, spacing=(0.5, 0.7, 2.0), origin=(10.0, 20.0, 30.0))
    volume = load_volume(tmp_path / "s")
    expected = np.array([[-0.5, 0, 0, -10.0], [0, -0.7, 0, -20.0], [0, 0, 2.0, 30.0], [0, 0, 0, 1]])
    assert np.allclose(volume.affine, expected)
    assert np.array_equal(volume.array, ramp.astype(np.float32))
    assert volume.modality == "CT"


@pytest.mark.parametrize("orientation", [AXIAL, CORONAL, SAGITTAL], ids=["axial", "coronal", "sagittal"])
def test_shuffled_reversed_instances_identical(tmp_path, ramp, orientation):
    write_series(tmp_path / "ordered", ramp, orientation=orientation, spacing=(1.0, 1.0, 2.5), origin=(5.0, -3.0, 7.0))
    n = ramp.shape[2]
    names = [f"x{index:03d}.dcm" for index in random.Random(4).sample(range(n), n)]
    write_series(
        tmp_path / "shuffled", ramp, orientation=orientation, spacing=(1.0, 1.0, 2.5), origin=(5.0, -3.0, 7.0),
        names=names, instances=list(range(n, 0, -1)),
    )
    ordered = load_volume(tmp_path / "ordered")
    shuffled = load_volume(tmp_path / "shuffled")
    assert np.array_equal(ordered.array, shuffled.array)
    assert np.allclose(ordered.affine, shuffled.affine)


def test_marker_world_position(tmp_path):
    # Six axial slices written with InstanceNumber rising while z falls (10, 8, ..., 0);
    # the only bright voxel is in the most superior slice (z = 10).
    volume = np.zeros((4, 4, 6), dtype=np.int16)
    positions = [(0.0, 0.0, 10.0 - 2.0 * n) for n in range(6)]
    volume[1, 2, 0] = 1000
    write_series(tmp_path / "s", volume, positions=positions)
    loaded = load_volume(tmp_path / "s")
    index = np.argwhere(loaded.array == 1000)[0]
    world = loaded.affine @ np.array([*index, 1.0])
    expected = lps_to_ras(np.array([1.0, 2.0, 10.0]))
    assert np.allclose(world[:3], expected)
    assert index[2] == 5


def test_spacing_from_positions(tmp_path):
    # SliceThickness and SpacingBetweenSlices state 5 mm but the positions are 1.6 mm apart.
    volume = np.ones((4, 4, 6), dtype=np.int16)
    positions = [(0.0, 0.0, 1.6 * n) for n in range(6)]
    write_series(tmp_path / "s", volume, positions=positions, SliceThickness=5.0, SpacingBetweenSlices=5.0)
    assert load_volume(tmp_path / "s").spacing[2] == pytest.approx(1.6)


@pytest.mark.parametrize(
    "z",
    [[0.0, 1.0, 3.0, 4.0, 5.0], [0.0, 1.6, 3.2, 6.4, 8.0, 9.6]],
    ids=["missing-middle", "siemens-gap"],
)
def test_gap_rejected(tmp_path, z):
    volume = np.ones((4, 4, len(z)), dtype=np.int16)
    write_series(tmp_path / "s", volume, positions=[(0.0, 0.0, value) for value in z], SliceThickness=1.6, SpacingBetweenSlices=1.6)
    with pytest.raises(InputError, match="inconsistent slice spacing") as caught:
        load_volume(tmp_path / "s")
    assert f"{max(np.diff(z)):.3f}" in str(caught.value)


def test_duplicate_positions_rejected(tmp_path):
    volume = np.ones((4, 4, 4), dtype=np.int16)
    write_series(tmp_path / "s", volume, positions=[(0.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, 1.0), (0.0, 0.0, 2.0)])
    with pytest.raises(InputError, match=r"duplicate positions in series .*\[0\.0, 0\.0, 1\.0\]"):
        load_volume(tmp_path / "s")


def test_mixed_orientation_rejected(tmp_path):
    volume = np.ones((4, 4, 10), dtype=np.int16)
    write_series(tmp_path / "s", volume, orientation=CORONAL)
    write(make_slice(np.ones((4, 4), np.int16), (0.0, 0.0, 50.0), orientation=AXIAL, instance=11), tmp_path / "s" / "odd.dcm")
    with pytest.raises(InputError, match="mixed ImageOrientationPatient") as caught:
        load_volume(tmp_path / "s")
    assert "odd.dcm" in str(caught.value)
    assert "1 of 11" in str(caught.value)


def test_missing_position_rejected(tmp_path):
    volume = np.ones((4, 4, 3), dtype=np.int16)
    write_series(tmp_path / "s", volume)
    write(make_slice(np.ones((4, 4), np.int16), None, instance=4), tmp_path / "s" / "nopos.dcm")
    with pytest.raises(InputError, match="geometry missing: nopos.dcm"):
        load_volume(tmp_path / "s")


def test_single_slice_rejected(tmp_path):
    write(make_slice(np.ones((4, 4), np.int16), (0.0, 0.0, 0.0), pixel_spacing=(0.7, 0.7), SliceThickness=3.0), tmp_path / "s" / "a.dcm")
    with pytest.raises(InputError, match="has 1 slice"):
        load_volume(tmp_path / "s")


def test_tilted_gantry_rejected(tmp_path):
    volume = np.ones((4, 4, 4), dtype=np.int16)
    positions = [(0.0, 0.5 * n, 2.0 * n) for n in range(4)]
    write_series(tmp_path / "s", volume, positions=positions)
    with pytest.raises(InputError, match="do not lie along the slice normal"):
        load_volume(tmp_path / "s")


def test_different_sizes_rejected(tmp_path):
    write_series(tmp_path / "s", np.ones((4, 4, 3), dtype=np.int16))
    write(make_slice(np.ones((5, 5), np.int16), (0.0, 0.0, 3.0), instance=4), tmp_path / "s" / "big.dcm")
    with pytest.raises(InputError, match="different sizes"):
        load_volume(tmp_path / "s")


@pytest.mark.parametrize("orientation", [CORONAL, SAGITTAL], ids=["coronal", "sagittal"])
def test_oblique_planes_world_positions(tmp_path, ramp, orientation):
    origin = np.array([5.0, -3.0, 7.0])
    write_series(tmp_path / "s", ramp, orientation=orientation, spacing=(0.5, 0.8, 2.5), origin=tuple(origin))
    loaded = load_volume(tmp_path / "s")
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row, column)
    for i, j, k in [(0, 0, 0), (7, 0, 0), (0, 5, 0), (3, 2, 4)]:
        index = np.argwhere(loaded.array == ramp[i, j, k])[0]
        world = (loaded.affine @ np.array([*index, 1.0]))[:3]
        expected = lps_to_ras(origin + i * 0.5 * row + j * 0.8 * column + k * 2.5 * normal)
        assert np.allclose(world, expected), (i, j, k)
