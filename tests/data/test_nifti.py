"""NIfTI geometry precedence, scaling, dimensionality, gzip problems and non-finite voxels."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from .ingest_fixtures import save_nifti

from medgan.data.reader import load_volume
from medgan.errors import InputError

LPS_ISH = np.array([[-2.0, 0, 0, 90.0], [0, -2.0, 0, 120.0], [0, 0, 3.0, -60.0], [0, 0, 0, 1]])


def _values():
    return np.arange(8 * 8 * 8).reshape(8, 8, 8).astype(np.int16) % 101  # 0..100


@pytest.mark.parametrize(
    ("slope", "inter", "low", "high"),
    [(0.0, 5.0, 0.0, 100.0), (np.nan, np.nan, 0.0, 100.0), (2.0, -10.0, -10.0, 190.0), (1.0, 0.0, 0.0, 100.0)],
    ids=["slope-zero", "slope-nan", "slope-two", "identity"],
)
def test_scaling_applied_once(tmp_path, slope, inter, low, high):
    path = tmp_path / "a.nii"
    image = nib.Nifti1Image(_values(), np.eye(4))
    image.header.set_data_dtype(np.int16)
    nib.save(image, path)
    raw = bytearray(path.read_bytes())
    header = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(bytes(raw[:348])))
    header["scl_slope"], header["scl_inter"] = slope, inter
    path.write_bytes(header.binaryblock + bytes(raw[348:]))
    volume = load_volume(path)
    assert volume.array.min() == low
    assert volume.array.max() == high


def test_nan_intercept_taken_as_zero(tmp_path):
    path = tmp_path / "a.nii"
    image = nib.Nifti1Image(_values(), np.eye(4))
    nib.save(image, path)
    raw = path.read_bytes()
    header = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(raw[:348]))
    header["scl_slope"], header["scl_inter"] = 3.0, np.nan
    path.write_bytes(header.binaryblock + raw[348:])
    volume = load_volume(path)
    assert volume.array.max() == 300.0
    assert any("intercept was taken as 0" in message for message in volume.warnings)


def test_no_double_scaling_in_source():
    # The reader applies scl_slope itself to the unscaled data; it never calls get_fdata,
    # whose result nibabel has already scaled.
    from medgan.data import nifti_reader

    source = Path(nifti_reader.__file__).read_text(encoding="utf-8")
    assert "get_fdata" not in source


def _xform_file(path, *, qform=None, qcode=0, sform=None, scode=0):
    image = nib.Nifti1Image(np.arange(64, dtype=np.float32).reshape(4, 4, 4), None)
    image.header.set_zooms((1.5, 1.5, 2.0))
    image.header.set_qform(qform, code=qcode)
    image.header.set_sform(sform, code=scode)
    nib.save(image, path)
    return path


def test_qform_used_when_sform_code_zero(tmp_path):
    path = _xform_file(tmp_path / "a.nii", qform=LPS_ISH, qcode=1, sform=np.eye(4), scode=0)
    assert np.allclose(load_volume(path).affine, LPS_ISH)


def test_sform_used_when_qform_code_zero(tmp_path):
    path = _xform_file(tmp_path / "a.nii", qform=np.eye(4), qcode=0, sform=LPS_ISH, scode=1)
    volume = load_volume(path)
    assert np.allclose(volume.affine, LPS_ISH)
    assert volume.warnings == []


def test_disagreeing_xforms_warn(tmp_path):
    shifted = LPS_ISH.copy()
    shifted[0, 3] += 5.0
    path = _xform_file(tmp_path / "a.nii", qform=LPS_ISH, qcode=1, sform=shifted, scode=1)
    volume = load_volume(path)
    assert np.allclose(volume.affine, shifted)
    assert any("disagree by up to 5.00 mm" in message for message in volume.warnings)


def test_no_xform_uses_pixdim(tmp_path):
    path = _xform_file(tmp_path / "a.nii", qcode=0, scode=0)
    volume = load_volume(path)
    assert np.allclose(volume.affine, np.diag([1.5, 1.5, 2.0, 1.0]))
    assert any("no world orientation" in message for message in volume.warnings)


@pytest.mark.parametrize(
    ("shape", "accepted"),
    [((10, 10, 10, 1, 2), False), ((10, 10, 10, 5), False), ((10, 10, 10, 1), True), ((10, 10, 10, 1, 1), True)],
    ids=["vector-5d", "time-4d", "trailing-singleton", "two-singletons"],
)
def test_dimensions(tmp_path, shape, accepted):
    path = save_nifti(tmp_path / "a.nii.gz", np.ones(shape, np.float32))
    if accepted:
        assert load_volume(path).array.shape == (10, 10, 10)
    else:
        with pytest.raises(InputError, match=r"expected one 3D volume, got shape \(10, 10, 10"):
            load_volume(path)


def test_single_slice_nifti_rejected(tmp_path):
    path = save_nifti(tmp_path / "a.nii", np.ones((10, 10, 1), np.float32))
    with pytest.raises(InputError, match="single slice"):
        load_volume(path)


def test_plain_file_named_gz_read(tmp_path):
    save_nifti(tmp_path / "a.nii", _values())
    (tmp_path / "a.nii").rename(tmp_path / "b.nii.gz")
    volume = load_volume(tmp_path / "b.nii.gz")
    assert np.array_equal(volume.array, _values().astype(np.float32))
    assert any("not gzip-compressed despite its .gz name" in message for message in volume.warnings)


def test_gzip_named_nii_read(tmp_path):
    save_nifti(tmp_path / "a.nii.gz", _values())
    (tmp_path / "a.nii.gz").rename(tmp_path / "b.nii")
    volume = load_volume(tmp_path / "b.nii")
    assert np.array_equal(volume.array, _values().astype(np.float32))


def test_truncated_gzip_rejected(tmp_path):
    data = np.random.default_rng(0).normal(size=(16, 16, 16)).astype(np.float32)
    path = save_nifti(tmp_path / "a.nii.gz", data)
    path.write_bytes(path.read_bytes()[: int(0.6 * path.stat().st_size)])
    with pytest.raises(InputError, match="truncated") as caught:
        load_volume(path)
    assert "a.nii.gz" in str(caught.value)


def test_short_data_section_rejected(tmp_path):
    path = save_nifti(tmp_path / "a.nii.gz", np.ones((32, 32, 32), np.float32))
    plain = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(plain[: 352 + 1000]))
    with pytest.raises(InputError, match="truncated") as caught:
        load_volume(path)
    assert "a.nii.gz" in str(caught.value)


def test_short_uncompressed_rejected(tmp_path):
    path = save_nifti(tmp_path / "a.nii", np.ones((32, 32, 32), np.float32))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InputError, match="truncated"):
        load_volume(path)


def test_not_nifti_rejected(tmp_path):
    path = tmp_path / "a.nii"
    path.write_bytes(b"hello" * 100)
    with pytest.raises(InputError, match="not a NIfTI file"):
        load_volume(path)


def _with_nonfinite(tmp_path, values):
    data = np.ones((16, 16, 16), np.float32)
    for index, value in enumerate(values):
        data.flat[index * 7] = value
    return save_nifti(tmp_path / "a.nii.gz", data)


def test_nan_rejected_with_count(tmp_path):
    path = _with_nonfinite(tmp_path, [np.nan] * 3)
    with pytest.raises(InputError, match="3 non-finite voxels"):
        load_volume(path)


def test_inf_rejected(tmp_path):
    path = _with_nonfinite(tmp_path, [np.inf])
    with pytest.raises(InputError, match=r"1 non-finite voxels \(0 NaN, 1 Inf\)"):
        load_volume(path)


def test_nan_replaced(tmp_path):
    path = _with_nonfinite(tmp_path, [np.nan, np.nan, np.inf])
    volume = load_volume(path, nonfinite="replace", nonfinite_value=-5.0)
    assert np.all(np.isfinite(volume.array))
    assert int((volume.array == -5.0).sum()) == 3
    assert any("replaced 3 non-finite voxels" in message for message in volume.warnings)


def test_all_nan_rejected_even_when_replacing(tmp_path):
    path = save_nifti(tmp_path / "a.nii.gz", np.full((16, 16, 16), np.nan, np.float32))
    with pytest.raises(InputError, match="all 4096 voxels are NaN"):
        load_volume(path, nonfinite="replace")


def test_modality_set_from_option(tmp_path):
    path = save_nifti(tmp_path / "a.nii.gz", np.ones((4, 4, 4), np.float32))
    assert load_volume(path, modality="mr").modality == "MR"
    assert load_volume(path).modality is None


def test_complex_voxels_rejected(tmp_path):
    path = tmp_path / "a.nii"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.complex64), np.eye(4)), path)
    with pytest.raises(InputError, match="not a single grey value"):
        load_volume(path)


def test_nifti2_and_big_endian_read(tmp_path):
    values = _values()
    nib.save(nib.Nifti2Image(values, LPS_ISH), tmp_path / "two.nii")
    big = nib.Nifti1Image(values, LPS_ISH, header=nib.Nifti1Header(endianness=">"))
    nib.save(big, tmp_path / "big.nii")
    assert (tmp_path / "big.nii").read_bytes()[:4] == (348).to_bytes(4, "big")
    for name in ("two.nii", "big.nii"):
        volume = load_volume(tmp_path / name)
        assert np.array_equal(volume.array, values.astype(np.float32)), name
        assert np.allclose(volume.affine, LPS_ISH), name


def test_other_format_named(tmp_path):
    path = tmp_path / "scan.mha"
    path.write_bytes(b"ObjectType = Image\n")
    with pytest.raises(InputError, match="convert it to NIfTI"):
        load_volume(path)
