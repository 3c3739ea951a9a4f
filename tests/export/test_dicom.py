"""DICOM series writer: geometry round trips, UIDs, pixel encoding, de-identification attributes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from medgan.data.reader import load_volume
from medgan.errors import ConfigError
from medgan.export import export_run
from medgan.export.dicom import SeriesOptions, write_dicom_series
from medgan.export.geometry import RAS_TO_LPS, dicom_reload_affine
from medgan.export.uids import is_valid_uid

DCIODVFY = shutil.which("dciodvfy") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "dciodvfy")
# UIDs that name standard SOP classes, transfer syntaxes and the writing library.
_STANDARD_UID_PREFIXES = ("1.2.840.10008.", pydicom.uid.PYDICOM_ROOT_UID)


def _oblique_affine() -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", [20, -10, 35], degrees=True).as_matrix() @ np.diag([1.5, 2.0, 3.0])
    affine[:3, 3] = [10.0, -20.0, 5.0]
    return affine


AFFINES = {
    "ras": np.diag([1.0, 1.0, 2.0, 1.0]),
    "las": np.diag([-1.0, 1.0, 2.0, 1.0]),
    "oblique": _oblique_affine(),
}


def _volume(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1000, 1000, size=(5, 4, 3))


def _sitk_affine(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load a series with SimpleITK; return the RAS+ affine and the (X, Y, Z) array."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)  # (Z, Y, X) -> (X, Y, Z)
    return RAS_TO_LPS @ affine, array


def _expected_array(array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Voxel values in the order a reader returns them (slices reversed for a left-handed grid)."""
    rounded = np.rint(array)
    return rounded if np.linalg.det(affine[:3, :3]) > 0 else rounded[:, :, ::-1]


def _uids(path: Path) -> list[str]:
    dataset = pydicom.dcmread(path)
    # ImplementationClassUID names the writing software, the same in every file by design.
    values = [str(element.value) for element in dataset.file_meta if element.VR == "UI" and element.keyword != "ImplementationClassUID"]
    values += [str(element.value) for element in dataset.iterall() if element.VR == "UI"]
    return [value for value in values if not value.startswith(_STANDARD_UID_PREFIXES)]


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_roundtrip_simpleitk(tmp_path: Path, name: str) -> None:
    array, affine = _volume(), AFFINES[name]
    write_dicom_series(array, affine, tmp_path, SeriesOptions("CT"))
    loaded_affine, loaded = _sitk_affine(tmp_path)
    assert np.max(np.abs(loaded_affine - dicom_reload_affine(affine, 3))) < 1e-3
    assert np.array_equal(loaded, _expected_array(array, affine))


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_roundtrip_medgan_loader(tmp_path: Path, name: str) -> None:
    array, affine = _volume(), AFFINES[name]
    write_dicom_series(array, affine, tmp_path, SeriesOptions("CT"))
    volume = load_volume(tmp_path)
    assert np.max(np.abs(volume.affine - dicom_reload_affine(affine, 3))) < 1e-3
    assert np.array_equal(volume.array, _expected_array(array, affine))


@pytest.mark.parametrize("name", ["ras", "las"])
def test_marker_world_position(tmp_path: Path, name: str) -> None:
    array = np.zeros((5, 4, 3))
    array[0, 2, 1] = 500.0  # marker at i = 0 only
    affine = AFFINES[name]
    write_dicom_series(array, affine, tmp_path, SeriesOptions("CT"))
    volume = load_volume(tmp_path)
    marker = np.argwhere(volume.array == 500.0)[0]
    world = volume.affine @ np.append(marker, 1.0)
    assert np.allclose(world, affine @ np.array([0.0, 2.0, 1.0, 1.0]), atol=1e-3)


def test_left_handed_reload_flips_slices() -> None:
    reloaded = dicom_reload_affine(AFFINES["las"], 3)
    assert np.allclose(reloaded @ [0, 0, 2, 1], AFFINES["las"] @ [0, 0, 0, 1])


def test_sheared_affine_rejected(tmp_path: Path) -> None:
    affine = np.eye(4)
    affine[0, 1] = 0.5
    with pytest.raises(ConfigError, match="non-orthogonal"):
        write_dicom_series(_volume(), affine, tmp_path, SeriesOptions("CT"))


def test_ct_out_of_int16_rejected(tmp_path: Path) -> None:
    array = _volume()
    array[0, 0, 0] = 40000.0
    with pytest.raises(ConfigError, match="signed 16-bit"):
        write_dicom_series(array, np.eye(4), tmp_path, SeriesOptions("CT"))


def test_mr_negative_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsigned 16-bit"):
        write_dicom_series(_volume(), np.eye(4), tmp_path, SeriesOptions("MR"))


def test_pixel_attributes_consistent(tmp_path: Path) -> None:
    array = _volume()
    array[0, 0, 0], array[1, 0, 0] = -32768.0, 32767.0  # int16 extremes must not wrap
    write_dicom_series(array, np.eye(4), tmp_path, SeriesOptions("CT"))
    volume = load_volume(tmp_path)
    dataset = pydicom.dcmread(sorted(tmp_path.glob("*.dcm"))[0])
    assert (dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation) == (16, 16, 15, 1)
    assert dataset.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert volume.array.min() == -32768.0
    assert volume.array.max() == 32767.0


def test_uids_valid_and_linked(tmp_path: Path) -> None:
    write_dicom_series(_volume(), np.eye(4), tmp_path, SeriesOptions("CT"))
    datasets = [pydicom.dcmread(path) for path in sorted(tmp_path.glob("*.dcm"))]
    for dataset in datasets:
        assert all(is_valid_uid(uid) for uid in _uids(Path(dataset.filename)))
        assert dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
    assert len({dataset.FrameOfReferenceUID for dataset in datasets}) == 1
    assert len({dataset.SeriesInstanceUID for dataset in datasets}) == 1
    assert len({dataset.SOPInstanceUID for dataset in datasets}) == len(datasets)


def test_two_exports_share_no_uid(tmp_path: Path) -> None:
    array = _volume()
    write_dicom_series(array, np.eye(4), tmp_path / "first", SeriesOptions("CT"))
    write_dicom_series(array, np.eye(4), tmp_path / "again", SeriesOptions("CT"))
    write_dicom_series(_volume(seed=1), np.eye(4), tmp_path / "other", SeriesOptions("CT"))
    sets = [{uid for path in (tmp_path / name).glob("*.dcm") for uid in _uids(path)} for name in ("first", "again", "other")]
    assert not sets[0] & sets[1]
    assert not sets[0] & sets[2]
    assert not sets[1] & sets[2]


def _dciodvfy_errors(path: Path) -> list[str]:
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_dciodvfy_no_errors(run_factory, modality: str) -> None:
    run = run_factory(n_scans=1, modality=modality)
    summary = export_run(run, fmt="dicom")
    files = sorted(summary.out_dir.rglob("*.dcm"))
    assert len(files) == 6
    for path in files:
        assert _dciodvfy_errors(path) == [], path.name


def test_deidentification_attributes(ct_run: Path) -> None:
    summary = export_run(ct_run, fmt="dicom")
    dataset = pydicom.dcmread(next(summary.out_dir.rglob("*.dcm")))
    assert list(dataset.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert dataset.PatientIdentityRemoved == "YES"
    assert dataset.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert dataset.BurnedInAnnotation == "NO"
    assert dataset.RecognizableVisualFeatures == "YES"


def test_head_scan_warns(run_factory) -> None:
    run = run_factory(n_scans=1, modality="MR", labels={"scan_type": "brain_mr"})
    summary = export_run(run, fmt="dicom")
    card = (summary.out_dir / "DATASET_CARD.md").read_text()
    assert len(summary.warnings) == 1
    assert "head scan" in card


def test_export_dicom_roundtrip(ct_run: Path) -> None:
    import nibabel as nib

    summary = export_run(ct_run, fmt="dicom")
    source = nib.load(str(ct_run / "synthetic" / "syn-0000.nii.gz"))
    volume = load_volume(summary.out_dir / "syn-0000")
    assert np.max(np.abs(volume.affine - source.affine)) < 1e-3
    assert np.max(np.abs(volume.array - np.asarray(source.dataobj))) <= 0.5


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_enhanced_roundtrip_medgan_loader(tmp_path: Path, name: str) -> None:
    pytest.importorskip("highdicom")
    from medgan.export.multiframe import write_dicom_enhanced

    array, affine = _volume(), AFFINES[name]
    result = write_dicom_enhanced(array, affine, tmp_path / "v.dcm", SeriesOptions("CT", window=(-1000.0, 1000.0)))
    volume = load_volume(result.files[0])
    assert np.max(np.abs(volume.affine - dicom_reload_affine(affine, 3))) < 1e-3
    assert np.array_equal(volume.array, _expected_array(array, affine))


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_enhanced_dciodvfy_no_errors(run_factory, modality: str) -> None:
    pytest.importorskip("highdicom")
    run = run_factory(n_scans=2, modality=modality)
    summary = export_run(run, fmt="dicom-enhanced")
    files = sorted(summary.out_dir.glob("*.dcm"))
    assert [path.name for path in files] == ["syn-0000.dcm", "syn-0001.dcm"]
    for path in files:
        assert _dciodvfy_errors(path) == [], path.name


def test_enhanced_uids_fresh(run_factory) -> None:
    pytest.importorskip("highdicom")
    run = run_factory(n_scans=2)
    summary = export_run(run, fmt="dicom-enhanced")
    first, second = (pydicom.dcmread(path) for path in sorted(summary.out_dir.glob("*.dcm")))
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
    assert all(is_valid_uid(uid) for uid in _uids(Path(first.filename)))
    assert not set(_uids(Path(first.filename))) & set(_uids(Path(second.filename)))
    assert first.NumberOfFrames == 6


def test_faces_removed_not_recognizable(run_factory) -> None:
    import yaml

    run = run_factory(n_scans=1, modality="MR", labels={"scan_type": "brain_mr"})
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["export"]["faces_removed"] = True
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    summary = export_run(run, fmt="dicom")
    dataset = pydicom.dcmread(next(summary.out_dir.rglob("*.dcm")))
    assert dataset.RecognizableVisualFeatures == "NO"
    assert summary.warnings == []


def test_export_mr_roundtrip(run_factory) -> None:
    import nibabel as nib

    run = run_factory(n_scans=1, modality="MR")
    summary = export_run(run, fmt="dicom")
    source = np.asarray(nib.load(str(run / "synthetic" / "syn-0000.nii.gz")).dataobj)
    volume = load_volume(summary.out_dir / "syn-0000")
    assert np.max(np.abs(volume.array - source)) <= 0.5
    assert pydicom.dcmread(summary.out_dir / "syn-0000" / "0001.dcm").PixelRepresentation == 0
