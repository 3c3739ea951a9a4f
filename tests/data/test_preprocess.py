"""The preprocessing chain: intensity mapping, orientation, fit to the grid and the inverse mapping."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.data.config import PreprocessConfig
from medgan.data.preprocess import MR_UNIT_MAX, canonical_affine, denormalize, preprocess_volume, profile_digest
from medgan.data.volume import Volume
from medgan.errors import ConfigError, InputError

PROFILE = PreprocessConfig(grid=16, spacing_mm=8.0)


def _on_grid(array: np.ndarray, flip_x: bool = False) -> Volume:
    """A volume already at the profile's spacing and centred on the world origin."""
    affine = canonical_affine(PreprocessConfig(grid=array.shape[0], spacing_mm=8.0))
    if flip_x:
        affine = affine @ np.array([[-1, 0, 0, array.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    return Volume(array=array.astype(np.float32), affine=affine, modality="CT")


def test_output_shape_and_range():
    rng = np.random.default_rng(0)
    volume = Volume(array=rng.normal(0, 500, (20, 18, 12)), affine=np.diag([3.0, 3.0, 5.0, 1.0]), modality="CT")
    output = preprocess_volume(volume, PROFILE, "CT")
    assert output.shape == (1, 16, 16, 16)
    assert output.dtype == np.float32
    assert output.min() >= -1.0
    assert output.max() <= 1.0


def test_ct_window_exact():
    array = np.zeros((16, 16, 16))
    array[3, 4, 5], array[6, 7, 8], array[9, 10, 11], array[1, 1, 1] = -1000.0, 500.0, 3000.0, -2000.0
    output = preprocess_volume(_on_grid(array), PROFILE, "CT")[0]
    assert output[3, 4, 5] == pytest.approx(-1.0)
    assert output[6, 7, 8] == pytest.approx(0.5)
    assert output[9, 10, 11] == pytest.approx(1.0)
    assert output[1, 1, 1] == pytest.approx(-1.0)
    assert output[0, 0, 0] == pytest.approx(0.0)


def test_mr_percentiles_span_range():
    array = np.arange(16**3, dtype=np.float64).reshape(16, 16, 16)
    output = preprocess_volume(_on_grid(array), PROFILE, "MR")
    assert output.min() == pytest.approx(-1.0)
    assert output.max() == pytest.approx(1.0)


@pytest.mark.parametrize("value", [0.0, 100.0], ids=["zero", "constant-100"])
@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_constant_volume_finite(value, modality):
    output = preprocess_volume(Volume(array=np.full((12, 12, 12), value), affine=np.diag([2.0, 2.0, 2.0, 1.0])), PROFILE, modality)
    assert np.all(np.isfinite(output))


def test_constant_mr_maps_to_background():
    output = preprocess_volume(Volume(array=np.full((12, 12, 12), 7.0), affine=np.eye(4)), PROFILE, "MR")
    assert np.allclose(output, -1.0, atol=1e-3)


def test_las_input_reoriented():
    # The marker sits at voxel i = 0 of an LAS volume, which is the most right-hand
    # (largest RAS x) column; after reorientation to RAS it is the last column.
    array = np.full((16, 16, 16), -1000.0)
    array[0, 5, 9] = 1000.0
    output = preprocess_volume(_on_grid(array, flip_x=True), PROFILE, "CT")[0]
    assert tuple(np.argwhere(output == output.max())[0]) == (15, 5, 9)


def test_crop_pad_keeps_spacing():
    # 40 voxels of 4 mm (160 mm) along x become 20 voxels of 8 mm, centred in 16 + cropped.
    array = np.full((40, 8, 8), -1000.0)
    array[:, 2:6, 2:6] = 1000.0
    volume = Volume(array=array, affine=np.diag([4.0, 4.0, 4.0, 1.0]), modality="CT")
    output = preprocess_volume(volume, PreprocessConfig(grid=16, spacing_mm=8.0, antialias=False), "CT")[0]
    bright = np.argwhere(output > 0.9)
    assert bright[:, 0].min() == 0
    assert bright[:, 0].max() == 15
    assert np.ptp(bright[:, 1]) <= 2


def test_resize_fits_whole_scan():
    array = np.full((40, 8, 8), 1000.0)
    volume = Volume(array=array, affine=np.diag([4.0, 4.0, 4.0, 1.0]), modality="CT")
    output = preprocess_volume(volume, PreprocessConfig(grid=16, spacing_mm=8.0, fit="resize"), "CT")[0]
    assert output[0, 8, 8] > 0.9
    assert output[15, 8, 8] > 0.9
    assert output[8, 0, 0] == pytest.approx(-1.0)


@pytest.mark.parametrize(("antialias", "aliased"), [(True, False), (False, True)], ids=["area", "interpolated"])
def test_antialias_removes_stripes(antialias, aliased):
    # One bright plane in every 3 (1 mm voxels) sampled every 8 mm: interpolation alone
    # turns it into a false coarse pattern (0, 0, -1, ...), area averaging into a
    # nearly even grey.
    x = np.arange(64)
    array = np.where(x % 3 == 0, 1000.0, -1000.0)[:, None, None] * np.ones((64, 16, 16))
    volume = Volume(array=array, affine=np.eye(4), modality="CT")
    output = preprocess_volume(volume, PreprocessConfig(grid=8, spacing_mm=8.0, antialias=antialias), "CT")[0]
    assert (float(output[1:7, 3:5, 3:5].std()) > 0.3) == aliased


def test_nonfinite_input_rejected():
    array = np.zeros((8, 8, 8))
    array[1, 1, 1] = np.nan
    with pytest.raises(InputError, match="NaN or Inf"):
        preprocess_volume(Volume(array=array, affine=np.eye(4)), PROFILE, "CT")


def test_unknown_modality_rejected():
    with pytest.raises(ConfigError, match="modality"):
        preprocess_volume(Volume(array=np.zeros((8, 8, 8)), affine=np.eye(4)), PROFILE, "PT")


def test_canonical_affine_centred():
    affine = canonical_affine(PreprocessConfig(grid=32, spacing_mm=6.0))
    assert np.allclose(np.diag(affine), [6.0, 6.0, 6.0, 1.0])
    assert np.allclose(affine @ np.array([15.5, 15.5, 15.5, 1.0]), [0, 0, 0, 1])


def test_denormalize_ct_window():
    output = denormalize(np.array([-1.0, 0.0, 0.5, 1.0, 3.0]), PreprocessConfig(ct_window=(-1000.0, 1000.0)), "CT")
    assert np.allclose(output, [-1000.0, 0.0, 500.0, 1000.0, 1000.0])


def test_denormalize_mr_unit():
    output = denormalize(np.array([-1.0, 0.0, 1.0]), PROFILE, "MR")
    assert np.allclose(output, [0.0, MR_UNIT_MAX / 2, MR_UNIT_MAX])


def test_ct_round_trip():
    array = np.linspace(-900.0, 900.0, 16**3).reshape(16, 16, 16)
    output = preprocess_volume(_on_grid(array), PROFILE, "CT")
    assert np.allclose(denormalize(output, PROFILE, "CT")[0], array, atol=1e-3)


def test_profile_digest_tracks_fields():
    base = profile_digest(PROFILE, "CT")
    assert profile_digest(PreprocessConfig(grid=16, spacing_mm=8.0), "CT") == base
    assert profile_digest(PreprocessConfig(grid=16, spacing_mm=8.0, ct_window=(-1000.0, 400.0)), "CT") != base
    assert profile_digest(PreprocessConfig(grid=16, spacing_mm=8.0, fit="resize"), "CT") != base
    assert profile_digest(PROFILE, "MR") != base


@pytest.mark.parametrize("antialias", [True, False], ids=["area", "interpolated"])
def test_downsampled_block_stays_in_place(antialias):
    # 64 mm cube at 1 mm centred on the world origin; a bright 4 mm block centred at
    # x = +16 mm must land at x index 16 / 4 + 7.5 = 11.5 of the 16-voxel, 4 mm grid.
    array = np.full((64, 64, 64), -1000.0)
    array[46:50, 30:34, 30:34] = 1000.0
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = -31.5
    output = preprocess_volume(Volume(array=array, affine=affine), PreprocessConfig(grid=16, spacing_mm=4.0, antialias=antialias), "CT")[0]
    weights = output + 1.0
    centre = [float((weights.sum(axis=tuple(a for a in range(3) if a != axis)) * np.arange(16)).sum() / weights.sum()) for axis in range(3)]
    assert centre == pytest.approx([11.5, 7.5, 7.5], abs=0.05)
