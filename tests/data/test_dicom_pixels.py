"""DICOM rescale per slice, unsigned overflow, compressed transfer syntaxes and enhanced multi-frame geometry."""

from __future__ import annotations

import logging

import numpy as np
import pydicom
import pytest
from .ingest_fixtures import make_slice, write, write_series
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, MRImageStorage, RLELossless

from medgan.data.reader import load_volume
from medgan.errors import InputError


def test_rescale_per_slice(tmp_path):
    # 20 slices of raw 2000 (uint16); slope 0.4 on slices 1-10 and 20, 1.0 on 11-19.
    folder = tmp_path / "s"
    slopes = [0.4] * 10 + [1.0] * 9 + [0.4]
    for k, slope in enumerate(slopes):
        ds = make_slice(np.full((4, 4), 2000, np.uint16), (0.0, 0.0, float(k)), instance=k + 1, slope=slope, intercept=-1024.0)
        write(ds, folder / f"{k:02d}.dcm")
    volume = load_volume(folder)
    expected = np.array([2000 * slope - 1024 for slope in slopes], dtype=np.float32)
    assert np.array_equal(volume.array[0, 0, :], expected)
    assert set(np.unique(volume.array).tolist()) == {-224.0, 976.0}


def test_fractional_slope_not_zero(tmp_path):
    write_series(tmp_path / "s", np.full((4, 4, 3), 8, np.int16), slope=0.25, intercept=0.0)
    assert np.all(load_volume(tmp_path / "s").array == 2.0)


def test_unsigned_negative_intercept_no_wrap(tmp_path):
    raw = np.linspace(0, 3000, 4 * 4 * 3).reshape(4, 4, 3).astype(np.uint16)
    raw.flat[0], raw.flat[-1] = 0, 3000
    write_series(tmp_path / "s", raw, slope=1.0, intercept=-1024.0)
    volume = load_volume(tmp_path / "s")
    assert volume.array.min() == -1024.0
    assert volume.array.max() == 1976.0


def test_unsigned_high_values_not_negative(tmp_path):
    raw = np.full((4, 4, 3), 60000, np.uint16)
    write_series(tmp_path / "s", raw, modality="MR", sop_class=MRImageStorage)
    volume = load_volume(tmp_path / "s")
    assert volume.array.min() == 60000.0


@pytest.mark.parametrize(
    ("slope", "intercept", "expected"),
    [(None, None, 50.0), (2.0, None, 100.0), (None, -10.0, 40.0)],
    ids=["both-absent", "intercept-absent", "slope-absent"],
)
def test_absent_rescale_defaults(tmp_path, slope, intercept, expected, caplog):
    write_series(tmp_path / "s", np.full((4, 4, 3), 50, np.int16), modality="MR", sop_class=MRImageStorage, slope=slope, intercept=intercept)
    with caplog.at_level(logging.INFO, logger="medgan.data"):
        volume = load_volume(tmp_path / "s")
    assert np.all(volume.array == expected)
    assert any("slope 1 and intercept 0 were used" in record.getMessage() for record in caplog.records)


def test_absent_rescale_ct_warns(tmp_path):
    write_series(tmp_path / "s", np.full((4, 4, 3), 50, np.int16), slope=None, intercept=None)
    volume = load_volume(tmp_path / "s")
    assert any("CT requires them" in message for message in volume.warnings)


def _compress_rle(path):
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.save_as(path)


def test_rle_matches_original(tmp_path, ramp):
    paths = write_series(tmp_path / "rle", ramp + 1)
    for path in paths:
        _compress_rle(path)
    assert pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID == RLELossless
    assert np.array_equal(load_volume(tmp_path / "rle").array, (ramp + 1).astype(np.float32))


def test_rle_zero_slice_rejected(tmp_path, ramp):
    volume = ramp + 1
    volume[:, :, 2] = 0
    paths = write_series(tmp_path / "rle", volume)
    for path in paths:
        _compress_rle(path)
    with pytest.raises(InputError, match="to all zeros") as caught:
        load_volume(tmp_path / "rle")
    assert RLELossless in str(caught.value)


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLosslessSV1], ids=["jpeg2000", "jpeg-lossless"])
def test_garbage_codestream_names_syntax(tmp_path, ramp, syntax):
    paths = write_series(tmp_path / "s", ramp)
    ds = pydicom.dcmread(paths[1])
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(40)])
    ds["PixelData"].VR = "OB"
    ds.save_as(paths[1], enforce_file_format=True)
    with pytest.raises(InputError, match="cannot decode pixel data") as caught:
        load_volume(tmp_path / "s")
    assert syntax in str(caught.value)
    assert paths[1].name in str(caught.value)


def _enhanced(path, *, positions, spacing=(0.8, 0.8), thickness=2.5, drop_positions=False):
    frames = len(positions)
    pixels = (np.arange(frames * 8 * 8).reshape(frames, 8, 8) % 500).astype(np.int16) + 1  # (frames, rows, columns)
    ds = make_slice(pixels[0], None, orientation=None, pixel_spacing=None, slope=None, intercept=None,
                    sop_class="1.2.840.10008.5.1.4.1.1.2.1")  # Enhanced CT Image Storage
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.NumberOfFrames = frames
    ds.PixelData = pixels.tobytes()

    measures = Dataset()
    measures.PixelSpacing = list(spacing)
    measures.SliceThickness = thickness
    plane = Dataset()
    plane.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    transform = Dataset()
    transform.RescaleSlope = 1.0
    transform.RescaleIntercept = -1024.0
    shared = Dataset()
    shared.PixelMeasuresSequence = [measures]
    shared.PlaneOrientationSequence = [plane]
    shared.PixelValueTransformationSequence = [transform]
    ds.SharedFunctionalGroupsSequence = [shared]

    per_frame = []
    for position in positions:
        item = Dataset()
        if not drop_positions:
            location = Dataset()
            location.ImagePositionPatient = list(position)
            item.PlanePositionSequence = [location]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    write(ds, path)
    return pixels


def test_enhanced_geometry_from_groups(tmp_path):
    positions = [(-3.0, 4.0, z) for z in (0.0, 2.5, 5.0, 7.5)]
    pixels = _enhanced(tmp_path / "e.dcm", positions=positions)
    volume = load_volume(tmp_path / "e.dcm")
    assert np.allclose(np.diag(volume.affine)[:3], [-0.8, -0.8, 2.5])
    assert np.allclose(volume.affine[:3, 3], [3.0, -4.0, 0.0])
    assert np.array_equal(volume.array[:, :, 1], pixels[1].T.astype(np.float32) - 1024)


def test_enhanced_missing_positions_rejected(tmp_path):
    _enhanced(tmp_path / "e.dcm", positions=[(0.0, 0.0, z) for z in (0.0, 2.5, 5.0, 7.5)], drop_positions=True)
    with pytest.raises(InputError, match="geometry missing"):
        load_volume(tmp_path / "e.dcm")


def test_enhanced_reversed_frames_sorted(tmp_path):
    positions = [(0.0, 0.0, z) for z in (7.5, 5.0, 2.5, 0.0)]
    pixels = _enhanced(tmp_path / "e.dcm", positions=positions)
    volume = load_volume(tmp_path / "e.dcm")
    assert np.array_equal(volume.array[:, :, 0], pixels[3].T.astype(np.float32) - 1024)
    assert volume.affine[2, 3] == 0.0


def test_undecodable_syntax_says_fix(tmp_path, ramp):
    paths = write_series(tmp_path / "s", ramp)
    ds = pydicom.dcmread(paths[0])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 Main Profile / Main Level
    ds.PixelData = encapsulate([bytes(64)])
    ds["PixelData"].VR = "OB"
    ds.save_as(paths[0], enforce_file_format=True)
    with pytest.raises(InputError, match=r"1\.2\.840\.10008\.1\.2\.4\.100.*decompress the series"):
        load_volume(tmp_path / "s")


def test_jpeg2000_matches_original(tmp_path):
    from pydicom.pixels import get_encoder

    if not get_encoder(JPEG2000Lossless).is_available:
        pytest.skip("no JPEG 2000 encoder installed (pylibjpeg-openjpeg)")
    # OpenJPEG's default of 6 resolution levels needs planes of at least 32 x 32.
    volume = (np.arange(32 * 32 * 3).reshape(32, 32, 3) % 1000 + 1).astype(np.int16)
    paths = write_series(tmp_path / "j2k", volume)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless)
        ds.save_as(path)
    assert pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert np.array_equal(load_volume(tmp_path / "j2k").array, volume.astype(np.float32))


def _two_slice_series(source, folder):
    """Copy one of pydicom's test images into a 2-slice series, keeping its pixel encoding."""
    folder.mkdir()
    for k in range(2):
        ds = pydicom.dcmread(source)
        ds.ImagePositionPatient = [0.0, 0.0, 5.0 * k]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{k + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"{k}.dcm")


@pytest.mark.parametrize(
    "name",
    ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"],
    ids=["rle", "jpeg-ls", "jpeg2000"],
)
def test_third_party_compressed_matches(tmp_path, name):
    from pydicom.data import get_testdata_file
    from pydicom.pixels import get_decoder

    compressed = get_testdata_file(name)
    if not get_decoder(pydicom.dcmread(compressed).file_meta.TransferSyntaxUID).is_available:
        pytest.skip(f"no decoder installed for {name}")
    _two_slice_series(get_testdata_file("MR_small.dcm"), tmp_path / "plain")
    _two_slice_series(compressed, tmp_path / "compressed")
    plain = load_volume(tmp_path / "plain")
    decoded = load_volume(tmp_path / "compressed")
    assert np.array_equal(decoded.array, plain.array)
    assert np.any(plain.array != 0)


def test_third_party_truncated_rejected(tmp_path):
    from pydicom.data import get_testdata_file

    _two_slice_series(get_testdata_file("MR_small.dcm"), tmp_path / "s")
    truncated = (tmp_path / "s" / "1.dcm").read_bytes()[:-1000]
    (tmp_path / "s" / "1.dcm").write_bytes(truncated)
    with pytest.raises(InputError, match="1.dcm"):
        load_volume(tmp_path / "s")
