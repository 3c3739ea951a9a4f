"""Tiny run folders and identifier-laden source scans, built in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from medgan.data.config import PreprocessConfig
from medgan.data.preprocess import canonical_affine, denormalize
from medgan.fileio import sha256_file

GRID = 6
SPACING = 4.0
CT_WINDOW = (-1000.0, 1000.0)

SOURCE_NAME = "Doe^Johnathan"
SOURCE_PATIENT_ID = "MRN4471829"
SOURCE_BIRTH_DATE = "19610415"
SOURCE_ACCESSION = "ACC99887766"
SOURCE_INSTITUTION = "Saint Example Hospital"
SOURCE_STUDY_UID = "1.2.826.0.1.3680043.8.498.1234567890"
SOURCE_FOLDER = "DOE_JOHNATHAN_MRN4471829"


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def write_source_dicom(folder: Path) -> Path:
    """Write a one-slice CT source with identifiers at the top level, three sequence levels deep and in a private block."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = SOURCE_STUDY_UID + ".3"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = SOURCE_STUDY_UID + ".3"
    ds.StudyInstanceUID = SOURCE_STUDY_UID
    ds.SeriesInstanceUID = SOURCE_STUDY_UID + ".2"
    ds.PatientName = SOURCE_NAME
    ds.PatientID = SOURCE_PATIENT_ID
    ds.PatientBirthDate = SOURCE_BIRTH_DATE
    ds.AccessionNumber = SOURCE_ACCESSION
    ds.InstitutionName = SOURCE_INSTITUTION
    ds.Modality = "CT"
    deepest = _item(PatientName=SOURCE_NAME, PatientID=SOURCE_PATIENT_ID)
    middle = _item(ReferencedStudySequence=Sequence([_item(ReferencedSOPInstanceUID=SOURCE_STUDY_UID, ReferencedSeriesSequence=Sequence([deepest]))]))
    ds.RequestAttributesSequence = Sequence([middle])
    block = ds.private_block(0x0029, "ACME 1.0", create=True)
    block.add_new(0x10, "LO", SOURCE_NAME)
    block.add_new(0x11, "DA", SOURCE_BIRTH_DATE)
    ds.Rows, ds.Columns = 4, 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = np.zeros((4, 4), dtype="<i2").tobytes()
    path = folder / "IM0001.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def make_run(
    root: Path,
    *,
    n_scans: int = 2,
    modality: str = "CT",
    flagged: tuple[int, ...] = (),
    labels: dict[str, str] | None = None,
    seed: int = 0,
) -> Path:
    """Build a run folder with ``n_scans`` synthetic volumes and a DICOM source with identifiers."""
    from safetensors.numpy import save_file

    run = root / "run"
    source = write_source_dicom(root / "site" / SOURCE_FOLDER / "series1").parent
    rng = np.random.default_rng(seed)
    profile = PreprocessConfig(grid=GRID, spacing_mm=SPACING, ct_window=CT_WINDOW)
    affine = canonical_affine(profile)
    index = []
    (run / "synthetic").mkdir(parents=True)
    for number in range(n_scans):
        values = denormalize(np.tanh(rng.normal(size=(GRID, GRID, GRID))), profile, modality)  # HU or MR units
        image = nib.Nifti1Image(values, affine)
        path = run / "synthetic" / f"syn-{number:04d}.nii.gz"
        nib.save(image, str(path))
        index.append({"file": path.name, "labels": dict(labels or {"scan_type": "chest_ct"}), "sha256": sha256_file(path)})
    (run / "synthetic" / "index.json").write_text(json.dumps(index))
    config = {
        "name": "test-run",
        "data": {"manifest": "<site path>", "holdout_fraction": 0.2},
        "preprocess": {"grid": GRID, "spacing_mm": SPACING, "ct_window": list(CT_WINDOW)},
        "export": {"modality": modality},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    report = {
        "medgan_version": "0.1.0",
        "run_name": "test-run",
        "config": config,
        "data": {"n_patients": 1, "profile": "chest_ct" if modality == "CT" else "brain_mr"},
        "privacy": {
            "private": True,
            "epsilon": 7.9,
            "delta": 1e-5,
            "accountant": "prv",
            "noise_multiplier": 1.1,
            "sample_rate": 0.1,
            "steps": 200,
            "max_grad_norm": 1.0,
            "unit": "patient",
            "cohort_epsilon_total": 11.5,
        },
        "synthetic": index,
        "evaluation": {"id": "eval-001", "extractor": {"name": "encoder", "sha256": "ab" * 32}},
        "fidelity": {"fid": {"value": 12.0, "ci": [10.0, 14.0], "noise_floor": 9.0}},
        "memorization": {
            "flagged": [
                {"synthetic": index[number]["file"], "nearest_train": "scan-000000000000", "similarity": 0.99, "threshold": 0.95}
                for number in flagged
            ],
            "rule": "similarity above the holdout 99th percentile",
        },
    }
    (run / "report.json").write_text(json.dumps(report))
    (run / "generator").mkdir()
    save_file({"weight": np.ones((2, 2), dtype=np.float32)}, str(run / "generator" / "generator.safetensors"))
    (run / "generator" / "generator.json").write_text(json.dumps({"latent_dim": 8, "grid": GRID}))
    (run / "private").mkdir()
    id_map = {"scan-0123456789ab": {"source": str(source), "patient_id": "pat-0123456789ab", "source_patient_id": SOURCE_PATIENT_ID}}
    (run / "private" / "id_map.json").write_text(json.dumps(id_map))
    return run


@pytest.fixture
def ct_run(tmp_path: Path) -> Path:
    return make_run(tmp_path)


@pytest.fixture
def run_factory(tmp_path: Path):
    """Return a builder of run folders under a fresh subfolder of tmp_path per call."""
    counter = iter(range(1000))

    def build(**options: object) -> Path:
        return make_run(tmp_path / f"case{next(counter)}", **options)

    return build
