"""DICOM folder screening: several series or echoes, non-image objects, junk and identifying images."""

from __future__ import annotations

import logging

import numpy as np
import pydicom
import pytest
from .ingest_fixtures import make_slice, write, write_series
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    BasicTextSRStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    GrayscaleSoftcopyPresentationStateStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from medgan.data.reader import load_volume
from medgan.errors import InputError


def _non_image(path, sop_class):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.Modality = "SR"
    ds.save_as(path, enforce_file_format=True)


def test_two_series_listed(tmp_path):
    write_series(tmp_path / "s", np.ones((4, 4, 3), np.int16), series_uid="1.2.3.1", names=["a1.dcm", "a2.dcm", "a3.dcm"])
    write_series(tmp_path / "s", np.ones((6, 6, 2), np.int16), series_uid="1.2.3.2", names=["b1.dcm", "b2.dcm"])
    with pytest.raises(InputError, match="contains 2 series") as caught:
        load_volume(tmp_path / "s")
    assert "3 file(s), 3 frame(s) of 4x4" in str(caught.value)
    assert "2 file(s), 2 frame(s) of 6x6" in str(caught.value)


def test_two_echoes_listed(tmp_path):
    volume = np.ones((4, 4, 3), np.int16)
    write_series(tmp_path / "s", volume, modality="MR", sop_class=MRImageStorage, EchoNumbers=1, EchoTime=10.0,
                 names=["e1a.dcm", "e1b.dcm", "e1c.dcm"])
    write_series(tmp_path / "s", 5 * volume, modality="MR", sop_class=MRImageStorage, EchoNumbers=2, EchoTime=80.0,
                 names=["e2a.dcm", "e2b.dcm", "e2c.dcm"])
    with pytest.raises(InputError, match="contains 2 volumes") as caught:
        load_volume(tmp_path / "s")
    assert "echo 1: 3 frame(s)" in str(caught.value)
    assert "echo 2: 3 frame(s)" in str(caught.value)


def test_duplicate_volume_without_tags_rejected(tmp_path):
    volume = np.ones((4, 4, 3), np.int16)
    write_series(tmp_path / "s", volume, names=["a1.dcm", "a2.dcm", "a3.dcm"])
    write_series(tmp_path / "s", volume, names=["b1.dcm", "b2.dcm", "b3.dcm"])
    with pytest.raises(InputError, match="duplicate positions in series"):
        load_volume(tmp_path / "s")


def test_non_image_objects_skipped(tmp_path, caplog, ramp):
    write_series(tmp_path / "s", ramp)
    _non_image(tmp_path / "s" / "report.dcm", BasicTextSRStorage)
    _non_image(tmp_path / "s" / "gsps.dcm", GrayscaleSoftcopyPresentationStateStorage)
    dicomdir = Dataset()
    dicomdir.file_meta = FileMetaDataset()
    dicomdir.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dicomdir.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dicomdir.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dicomdir.DirectoryRecordSequence = []
    dicomdir.save_as(tmp_path / "s" / "DICOMDIR", enforce_file_format=True)
    with caplog.at_level(logging.INFO, logger="medgan.data"):
        volume = load_volume(tmp_path / "s")
    assert volume.array.shape == ramp.shape
    skipped = [record.getMessage() for record in caplog.records if "skipped" in record.getMessage()]
    assert len(skipped) == 3
    assert any("Basic Text SR Storage" in message for message in skipped)
    assert any("Grayscale Softcopy Presentation State Storage" in message for message in skipped)
    assert any("DICOMDIR" in message for message in skipped)


def test_only_non_image_rejected(tmp_path):
    (tmp_path / "s").mkdir()
    _non_image(tmp_path / "s" / "report.dcm", BasicTextSRStorage)
    with pytest.raises(InputError, match="no DICOM image found"):
        load_volume(tmp_path / "s")


def test_preambleless_file_read(tmp_path, ramp):
    paths = write_series(tmp_path / "s", ramp)
    ds = pydicom.dcmread(paths[2])
    del ds.file_meta
    ds.preamble = None
    paths[2].unlink()
    pydicom.dcmwrite(tmp_path / "s" / "raw", ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert (tmp_path / "s" / "raw").read_bytes()[128:132] != b"DICM"
    volume = load_volume(tmp_path / "s")
    assert np.array_equal(volume.array, ramp.astype(np.float32))
    assert any("lack the DICM preamble" in message for message in volume.warnings)


def test_junk_dcm_skipped(tmp_path, ramp, caplog):
    write_series(tmp_path / "s", ramp)
    (tmp_path / "s" / "x.dcm").write_bytes(np.random.default_rng(0).bytes(4000))
    with caplog.at_level(logging.WARNING, logger="medgan.data"):
        volume = load_volume(tmp_path / "s")
    assert volume.array.shape == ramp.shape
    assert any("x.dcm" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"sop_class": SecondaryCaptureImageStorage}, "Secondary Capture"),
        ({"BurnedInAnnotation": "YES"}, "BurnedInAnnotation"),
        ({"image_type": ("ORIGINAL", "PRIMARY", "LOCALIZER")}, "LOCALIZER"),
    ],
    ids=["secondary-capture", "burned-in", "localizer"],
)
def test_identifying_series_excluded(tmp_path, ramp, extra, reason):
    write_series(tmp_path / "s", ramp, **extra)
    with pytest.raises(InputError, match=reason):
        load_volume(tmp_path / "s")
    assert load_volume(tmp_path / "s", allow_identifying=True).array.shape == ramp.shape


def test_localizer_beside_series_dropped(tmp_path, ramp, caplog):
    write_series(tmp_path / "s", ramp)
    scout = make_slice(np.ones((6, 8), np.int16), (0.0, 0.0, 0.0), orientation=(1, 0, 0, 0, 0, -1), image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    write(scout, tmp_path / "s" / "scout.dcm")
    with caplog.at_level(logging.INFO, logger="medgan.data"):
        volume = load_volume(tmp_path / "s")
    assert np.array_equal(volume.array, ramp.astype(np.float32))
    assert any("excluded 1 file(s)" in record.getMessage() for record in caplog.records)


def test_derived_secondary_ct_loads(tmp_path, ramp):
    # medgan's own DICOM exports are CT Image Storage with ImageType DERIVED\SECONDARY.
    write_series(tmp_path / "s", ramp, sop_class=CTImageStorage, image_type=("DERIVED", "SECONDARY", "AXIAL"))
    assert np.array_equal(load_volume(tmp_path / "s").array, ramp.astype(np.float32))


def test_modality_mismatch_rejected(tmp_path, ramp):
    write_series(tmp_path / "s", ramp)
    with pytest.raises(InputError, match="gives MR but the DICOM Modality is CT"):
        load_volume(tmp_path / "s", modality="MR")


def test_unsupported_modality_rejected(tmp_path, ramp):
    write_series(tmp_path / "s", ramp, modality="PT")
    with pytest.raises(InputError, match="Modality PT is not supported"):
        load_volume(tmp_path / "s")


def test_volume_carries_no_identifier(tmp_path, ramp):
    write_series(tmp_path / "s", ramp)
    volume = load_volume(tmp_path / "s")
    assert set(vars(volume)) == {"array", "affine", "modality", "warnings"}


def test_two_acquisitions_listed(tmp_path):
    volume = np.ones((4, 4, 3), np.int16)
    write_series(tmp_path / "s", volume, AcquisitionNumber=1, names=["a1.dcm", "a2.dcm", "a3.dcm"])
    write_series(tmp_path / "s", 2 * volume, AcquisitionNumber=2, names=["b1.dcm", "b2.dcm", "b3.dcm"])
    with pytest.raises(InputError, match="contains 2 acquisitions") as caught:
        load_volume(tmp_path / "s")
    assert "AcquisitionNumber 1: 3 frame(s)" in str(caught.value)
    assert "AcquisitionNumber 2: 3 frame(s)" in str(caught.value)


def test_acquisition_per_slice_loads(tmp_path, ramp):
    # Some CT scanners number each rotation of one volume as its own acquisition.
    paths = write_series(tmp_path / "s", ramp)
    for number, path in enumerate(paths, start=1):
        ds = pydicom.dcmread(path)
        ds.AcquisitionNumber = number
        ds.save_as(path)
    assert np.array_equal(load_volume(tmp_path / "s").array, ramp.astype(np.float32))


def test_pixel_padding_becomes_air(tmp_path):
    raw = np.full((4, 4, 3), 1024, np.int16)
    raw[0, 0, :] = -2000
    write_series(tmp_path / "s", raw, slope=1.0, intercept=-1024.0, PixelPaddingValue=-2000)
    volume = load_volume(tmp_path / "s")
    assert np.all(volume.array[0, 0, :] == -1024.0)
    assert np.all(volume.array[1:, :, :] == 0.0)


def test_folder_of_series_folders_rejected(tmp_path, ramp):
    write_series(tmp_path / "study" / "s1", ramp)
    with pytest.raises(InputError, match="contains sub-folders but no files"):
        load_volume(tmp_path / "study")


@pytest.mark.parametrize("keep", [200, -20], ids=["header-cut", "pixels-cut"])
def test_truncated_file_rejected(tmp_path, ramp, keep):
    paths = write_series(tmp_path / "s", ramp)
    data = paths[-1].read_bytes()
    paths[-1].write_bytes(data[:keep])
    with pytest.raises(InputError, match=paths[-1].name):
        load_volume(tmp_path / "s")
