"""Leak scanner: planted identifiers are found, clean exports stay quiet, exports carry nothing of the source."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medgan.export import export_run
from medgan.export.dicom import SeriesOptions, write_dicom_series
from medgan.export.leaks import Identifiers, identifiers_from_run, name_variants, scan_folder, scan_text

NAME = "Doe^Johnathan"
PATIENT_ID = "MRN4471829"
BIRTH_DATE = "19610415"
ACCESSION = "ACC99887766"
INSTITUTION = "Saint Example Hospital"
SOURCE_UID = "1.2.826.0.1.3680043.8.498.1234567890"
FOLDER_NAME = "DOE_JOHNATHAN_MRN4471829"
# Every written form of the source identifiers an export must not contain.
FORBIDDEN = [
    NAME, NAME.upper(), NAME.lower(), "Johnathan Doe", "DOE, JOHNATHAN", PATIENT_ID, BIRTH_DATE, "1961-04-15",
    ACCESSION, INSTITUTION, INSTITUTION.upper(), SOURCE_UID, FOLDER_NAME,
]


def _identifiers() -> Identifiers:
    return Identifiers(
        names={NAME},
        ids={PATIENT_ID},
        birth_dates={BIRTH_DATE},
        accession_numbers={ACCESSION},
        institutions={INSTITUTION},
        paths={"/site/archive/" + FOLDER_NAME, FOLDER_NAME},
        uids={SOURCE_UID},
    )


def _clean_dicom(path: Path) -> Dataset:
    write_dicom_series(np.zeros((2, 2, 1)), np.eye(4), path.parent, SeriesOptions("CT"))
    dataset = pydicom.dcmread(path.parent / "0001.dcm")
    (path.parent / "0001.dcm").unlink()
    return dataset


def _plant_dicom(folder: Path, where: str) -> None:
    dataset = _clean_dicom(folder / "x.dcm")
    if where == "top":
        dataset.OtherPatientNames = NAME
    elif where == "nested":
        deepest = Dataset()
        deepest.PatientName = NAME.upper()
        middle = Dataset()
        middle.ReferencedSeriesSequence = Sequence([deepest])
        top = Dataset()
        top.ReferencedStudySequence = Sequence([middle])
        dataset.RequestAttributesSequence = Sequence([top])
    elif where == "private":
        dataset.private_block(0x0029, "ACME 1.0", create=True).add_new(0x10, "UN", b"patient " + BIRTH_DATE.encode())
    elif where == "file_meta":
        dataset.file_meta.SourceApplicationEntityTitle = PATIENT_ID
    elif where == "uid":
        dataset.ReferencedSOPInstanceUID = SOURCE_UID
    dataset.save_as(folder / "slice.dcm", enforce_file_format=True)


def _plant_nifti(folder: Path, where: str) -> None:
    image = nib.Nifti1Image(np.zeros((2, 2, 2), dtype=np.float32), np.eye(4))
    if where == "descrip":
        image.header["descrip"] = f"scan of {ACCESSION}".encode()
    else:
        image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", INSTITUTION.encode()))
    nib.save(image, str(folder / "volume.nii.gz"))


PLANTS = {
    "dicom_top_level": (lambda folder: _plant_dicom(folder, "top"), "name"),
    "dicom_nested_three_levels": (lambda folder: _plant_dicom(folder, "nested"), "name"),
    "dicom_private_tag": (lambda folder: _plant_dicom(folder, "private"), "birth_date"),
    "dicom_file_meta": (lambda folder: _plant_dicom(folder, "file_meta"), "id"),
    "dicom_source_uid": (lambda folder: _plant_dicom(folder, "uid"), "uid"),
    "nifti_descrip": (lambda folder: _plant_nifti(folder, "descrip"), "accession_number"),
    "nifti_extension": (lambda folder: _plant_nifti(folder, "extension"), "institution"),
    "json_unicode_escape": (lambda folder: (folder / "a.json").write_text('{"note": "Do\\u0065^Johnathan"}'), "name"),
    "json_key": (lambda folder: (folder / "a.json").write_text(json.dumps({PATIENT_ID: 1})), "id"),
    "markdown_escaped": (lambda folder: (folder / "a.md").write_text("Patient: Doe\\^Johnathan"), "name"),
    "markdown_entity": (lambda folder: (folder / "a.md").write_text("Born 1961&#45;04&#45;15"), "birth_date"),
    "text_name_order": (lambda folder: (folder / "a.txt").write_text("JOHNATHAN DOE"), "name"),
    "file_name": (lambda folder: (folder / f"{PATIENT_ID}.txt").write_text("x"), "id"),
    "folder_name": (lambda folder: (folder / FOLDER_NAME).mkdir(), "path"),
    "source_path": (lambda folder: (folder / "a.yaml").write_text(f"manifest: /site/archive/{FOLDER_NAME}/x\n"), "path"),
}


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_scanner_finds_planted(tmp_path: Path, plant: str) -> None:
    build, kind = PLANTS[plant]
    build(tmp_path)
    findings = scan_folder(tmp_path, _identifiers())
    assert kind in {finding.kind for finding in findings}


def test_scanner_quiet_on_clean(tmp_path: Path) -> None:
    _clean_dicom(tmp_path / "series" / "x.dcm").save_as(tmp_path / "series" / "clean.dcm", enforce_file_format=True)
    assert scan_folder(tmp_path, _identifiers()) == []


def test_digits_inside_uid_ignored() -> None:
    identifiers = Identifiers(ids={"4471829"})
    assert scan_text("2.25.99447182900123", identifiers) == []


def test_digits_standalone_found() -> None:
    identifiers = Identifiers(ids={"4471829"})
    assert scan_text("id 4471829.", identifiers) == ["id"]


def test_name_variants_forms() -> None:
    variants = name_variants("Doe^John^Q")
    assert {"doe^john^q", "john q doe", "doe, john q"} <= variants


def test_family_name_whole_word() -> None:
    identifiers = Identifiers(names={"Doe^John"})
    assert scan_text("it does not", identifiers) == []
    assert scan_text("Mr. DOE's scan", identifiers) == ["name"]


@pytest.mark.slow
def test_clean_export_thousands_of_slices(tmp_path: Path) -> None:
    series = write_dicom_series(np.zeros((2, 2, 2000)), np.eye(4), tmp_path / "syn-0000", SeriesOptions("CT"))
    # An id made of digits that occur inside a fresh UID: the scanner must not report it.
    inside_uid = series.sop_instance_uids[0].removeprefix("2.25.")[5:10]
    identifiers = Identifiers(names={NAME}, ids={inside_uid, PATIENT_ID}, birth_dates={BIRTH_DATE}, uids={SOURCE_UID})
    assert scan_folder(tmp_path, identifiers) == []


def test_identifiers_from_source(ct_run: Path) -> None:
    identifiers = identifiers_from_run(ct_run)
    assert NAME in identifiers.names
    assert PATIENT_ID in identifiers.ids
    assert BIRTH_DATE in identifiers.birth_dates
    assert ACCESSION in identifiers.accession_numbers
    assert INSTITUTION in identifiers.institutions
    assert SOURCE_UID in identifiers.uids
    assert FOLDER_NAME in identifiers.paths


def _file_text(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("latin-1")


@pytest.mark.parametrize("fmt", ["nifti", "dicom", "dicom-enhanced"])
def test_export_carries_no_source_identifier(ct_run: Path, fmt: str) -> None:
    if fmt == "dicom-enhanced":
        pytest.importorskip("highdicom")
    summary = export_run(ct_run, fmt=fmt)
    texts = {path.relative_to(summary.out_dir).as_posix(): _file_text(path) for path in summary.out_dir.rglob("*") if path.is_file()}
    for forbidden in FORBIDDEN:
        hits = [name for name, text in texts.items() if forbidden.casefold() in text.casefold() or forbidden.casefold() in name.casefold()]
        assert hits == [], forbidden


def test_unreadable_nifti_scanned_raw(tmp_path: Path) -> None:
    (tmp_path / "broken.nii.gz").write_bytes(gzip.compress(b"not a header " + PATIENT_ID.encode()))
    findings = scan_folder(tmp_path, _identifiers())
    assert {finding.kind for finding in findings} == {"id"}


def test_dicom_without_preamble_scanned(tmp_path: Path) -> None:
    dataset = _clean_dicom(tmp_path / "x.dcm")
    dataset.OtherPatientIDs = PATIENT_ID
    dataset.save_as(tmp_path / "IM0001", enforce_file_format=False)  # no preamble, no DICM marker
    findings = scan_folder(tmp_path, _identifiers())
    assert "id" in {finding.kind for finding in findings}


def test_label_folder_not_identifier(run_factory) -> None:
    run = run_factory(labels={"scan_type": "series_chest"})
    id_map_path = run / "private" / "id_map.json"
    id_map = json.loads(id_map_path.read_text())
    entry = next(iter(id_map.values()))
    id_map["scan-ffffffffffff"] = {**entry, "source": str(Path(entry["source"]).parent / "series_chest" / "series7")}
    id_map_path.write_text(json.dumps(id_map))
    paths = identifiers_from_run(run).paths
    assert "series_chest" not in paths
    assert "series7" not in paths
    assert FOLDER_NAME in paths
