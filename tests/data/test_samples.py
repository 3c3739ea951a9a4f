"""The real scans shipped in data_samples: DICOM/NIfTI agreement and the quickstart manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medgan.data.config import DataConfig, PreprocessConfig
from medgan.data.dataset import prepare_cohort
from medgan.data.discover import cohort_from_path
from medgan.data.pseudonym import Pseudonymizer
from medgan.data.reader import load_volume

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
pytestmark = pytest.mark.skipif(not SAMPLES.exists(), reason="data_samples is not in this checkout")


def test_dicom_matches_nifti():
    dicom = load_volume(SAMPLES / "dicom" / "derived_ct_series_lung1")
    nifti = load_volume(SAMPLES / "ct" / "pyradiomics_lung1_image.nii.gz", modality="CT")
    assert dicom.array.shape == nifti.array.shape
    assert np.allclose(dicom.affine, nifti.affine, atol=1e-4)
    assert np.array_equal(dicom.array, nifti.array)


def test_genuine_ge_series():
    volume = load_volume(SAMPLES / "dicom" / "genuine_ct_series_5x16x16")
    assert volume.array.shape == (16, 16, 5)
    assert volume.spacing[2] == pytest.approx(2.5)
    assert volume.modality == "CT"


def test_enhanced_without_groups_rejected():
    from medgan.errors import InputError

    with pytest.raises(InputError, match="geometry missing"):
        load_volume(SAMPLES / "dicom" / "enhanced_mr_emri_small.dcm")


@pytest.mark.slow
def test_manifest_prepares_at_32(tmp_path):
    cohort = cohort_from_path(SAMPLES / "manifest.csv", Pseudonymizer(b"k" * 32))
    prepared = prepare_cohort(cohort, DataConfig(manifest=SAMPLES / "manifest.csv"), PreprocessConfig(grid=32), tmp_path, progress=False)
    assert len(prepared.scans) == 9
    assert all(scan.array.shape == (1, 32, 32, 32) for scan in prepared.scans)
    assert all(np.all(np.isfinite(scan.array)) for scan in prepared.scans)
    assert {scan.modality for scan in prepared.scans} == {"CT", "MR"}
