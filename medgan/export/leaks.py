"""A scanner that looks for a source cohort's identifiers in any folder.

It compares decoded values, not raw bytes: every DICOM element of every value
representation (file meta, private tags, sequences at any depth), NIfTI header text
fields and extensions, JSON strings and keys, Markdown and other text after unescaping,
and every file and folder name.  Matching is case-insensitive; identifiers that are
all digits (ids, birth dates) must stand alone between non-digits, and UID-shaped
tokens are matched only against the source UIDs as a whole, so the digits of a fresh
``2.25.`` UID never count as a hit.
"""

from __future__ import annotations

import gzip
import html
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from medgan.errors import InputError

__all__ = ["Identifiers", "Finding", "scan_folder", "scan_text", "identifiers_from_run", "name_variants", "date_variants"]

logger = logging.getLogger(__name__)

_UID_TOKEN = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+){2,}(?![0-9.])")
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!^|~<>])")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_TEXT_SUFFIXES = (".md", ".txt", ".yaml", ".yml", ".csv", ".html", ".htm", ".tsv", ".log", ".cfg", ".ini")
# Binary files of unknown kind are scanned as Latin-1 text up to this size.
_MAX_RAW_BYTES = 64 << 20
# Path components this common name no patient; skipping them keeps card text such as
# "data" or "images" from matching a source folder of that name.
_GENERIC_NAMES = frozenset(
    {
        "data", "dicom", "nifti", "images", "image", "series", "scans", "scan", "ct", "mr", "mri", "home", "tmp",
        "study", "studies", "raw", "input", "inputs", "source", "sources", "subjects", "subject", "patients", "export",
    }
)
_TRAILING_NUMBER = re.compile(r"[_\-. ]*[0-9]+$")
_MIN_TOKEN_LENGTH = 3
_NIFTI_HEADER_READ = 1 << 20


@dataclass
class Identifiers:
    """Identifiers of a source cohort, each list holding the raw values.

    ``names`` are DICOM person names (``Family^Given^Middle``); every other kind is
    matched as given, case-insensitively.
    """

    names: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    birth_dates: set[str] = field(default_factory=set)
    accession_numbers: set[str] = field(default_factory=set)
    institutions: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)

    def patterns(self) -> list[tuple[str, str, bool]]:
        """Return ``(kind, casefolded text, whole word)`` triples to search for, variants expanded.

        A family name alone is matched only as a whole word, so ``Doe`` does not fire
        on ``does``; every other form matches anywhere.
        """
        pairs: set[tuple[str, str, bool]] = set()
        for name in self.names:
            pairs.update(("name", variant, False) for variant in name_variants(name))
            family = name.strip().casefold().split("=")[0].split("^")[0].strip()
            if len(family) >= _MIN_TOKEN_LENGTH:
                pairs.add(("name", family, True))
        for date in self.birth_dates:
            pairs.update(("birth_date", variant, False) for variant in date_variants(date))
        for kind, values in (
            ("id", self.ids),
            ("accession_number", self.accession_numbers),
            ("institution", self.institutions),
            ("path", self.paths),
        ):
            for value in values:
                text = value.strip().casefold()
                if len(text) >= _MIN_TOKEN_LENGTH:
                    pairs.add((kind, text, False))
        return sorted(pairs)

    def __len__(self) -> int:
        return sum(
            len(values)
            for values in (self.names, self.ids, self.birth_dates, self.accession_numbers, self.institutions, self.paths, self.uids)
        )


@dataclass(frozen=True)
class Finding:
    """One identifier found in a file.

    The matched value itself is not stored, so findings can be logged and shown. The
    kind and location point to where to look.
    """

    path: str  # relative to the scanned folder
    location: str  # e.g. "(0010,0010) PatientName", "descrip", "file name"
    kind: str  # name, id, birth_date, accession_number, institution, path, uid

    def __str__(self) -> str:
        return f"{self.path}: {self.kind} in {self.location}"


def name_variants(name: str) -> set[str]:
    """Return the casefolded written forms of a DICOM person name.

    ``Doe^John`` gives ``doe^john``, ``doe john``, ``john doe``, ``doe, john``,
    ``doe,john``, ``doejohn`` and ``johndoe``.  A name of one component is returned
    as is; :meth:`Identifiers.patterns` adds the family name alone as a whole word.
    """
    text = name.strip().casefold()
    if not text:
        return set()
    alphabetic = text.split("=")[0]  # drop ideographic/phonetic groups' separators
    components = [part.strip() for part in alphabetic.split("^") if part.strip()]
    variants = {text, alphabetic}
    if components:
        family, given = components[0], components[1:]
        ordered = " ".join(components)
        variants.update({ordered, "^".join(components), "".join(components)})
        if given:
            variants.update(
                {
                    " ".join(given + [family]),
                    "".join(given + [family]),
                    f"{family}, {' '.join(given)}",
                    f"{family},{' '.join(given)}",
                    f"{' '.join(given)}^{family}",
                }
            )
    return {variant for variant in variants if len(variant) >= _MIN_TOKEN_LENGTH}


def date_variants(date: str) -> set[str]:
    """Return written forms of a DICOM date ``YYYYMMDD`` (ISO, US, European and raw)."""
    text = re.sub(r"[^0-9]", "", date)
    if len(text) != 8:
        return {date.strip().casefold()} if len(date.strip()) >= _MIN_TOKEN_LENGTH else set()
    year, month, day = text[:4], text[4:6], text[6:]
    return {
        text,
        f"{year}-{month}-{day}",
        f"{year}/{month}/{day}",
        f"{year}.{month}.{day}",
        f"{month}/{day}/{year}",
        f"{day}/{month}/{year}",
        f"{day}.{month}.{year}",
        f"{day}-{month}-{year}",
    }


def _contains(haystack: str, needle: str, whole_word: bool = False) -> bool:
    """Return True when ``needle`` occurs in ``haystack``.

    Digit-only needles must not touch another digit, and whole-word needles must not
    touch a letter or digit, on either side.
    """
    digits_only = needle.replace("-", "").replace("/", "").replace(".", "").isdigit()
    if not digits_only and not whole_word:
        return needle in haystack
    touches = str.isalnum if whole_word else str.isdigit
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = haystack[start - 1] if start > 0 else " "
        after = haystack[end] if end < len(haystack) else " "
        if not touches(before) and not touches(after):
            return True
        start = haystack.find(needle, start + 1)
    return False


def scan_text(text: str, identifiers: Identifiers, patterns: list[tuple[str, str, bool]] | None = None) -> list[str]:
    """Return the identifier kinds found in one decoded text value."""
    if not text:
        return []
    kinds: list[str] = []
    folded = text.casefold()
    for token in _UID_TOKEN.findall(folded):
        if token in identifiers.uids:
            kinds.append("uid")
    folded = _UID_TOKEN.sub(" ", folded)
    for kind, needle, whole_word in patterns if patterns is not None else identifiers.patterns():
        if kind not in kinds and _contains(folded, needle, whole_word):
            kinds.append(kind)
    return kinds


def _decode(value: object) -> str:
    """Return a searchable text form of a DICOM element value."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(_decode(item) for item in value)
    return str(value)


def _dicom_values(dataset: Dataset, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(location, text)`` for every element, recursing into every sequence item."""
    for element in dataset:
        location = f"{prefix}{element.tag} {element.keyword or 'private'}"
        if element.VR == "SQ":
            for index, item in enumerate(element.value or []):
                yield from _dicom_values(item, f"{location}[{index}] > ")
            continue
        if element.tag == 0x7FE00010:  # PixelData contains voxel values, not text
            continue
        yield location, _decode(element.value)


def _read_dicom(path: Path) -> Dataset | None:
    try:
        return pydicom.dcmread(path, force=path.suffix.lower() in (".dcm", ".dicom"))
    except (InvalidDicomError, OSError, ValueError, AttributeError, KeyError, TypeError):
        return None


def _file_values(path: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(location, decoded text)`` pairs of one file's content."""
    name = path.name.lower()
    if name.endswith(_NIFTI_SUFFIXES):
        yield from _nifti_values(path)
        return
    if name.endswith(".json"):
        raw = path.read_text(encoding="utf-8", errors="replace")
        yield "text", raw
        try:
            yield from _json_values(json.loads(raw), "")
        except json.JSONDecodeError:
            pass
        return
    if name.endswith(_TEXT_SUFFIXES):
        raw = path.read_text(encoding="utf-8", errors="replace")
        yield "text", raw
        yield "unescaped text", _MARKDOWN_ESCAPE.sub(r"\1", html.unescape(raw))
        return
    if name.endswith(".safetensors"):
        yield from _safetensors_values(path)
        return
    dataset = _read_dicom(path)
    if dataset is not None:
        if getattr(dataset, "file_meta", None) is not None:
            yield from _dicom_values(dataset.file_meta, "file meta ")
        yield from _dicom_values(dataset)
        return
    yield from _raw_values(path)


def _raw_values(path: Path) -> Iterator[tuple[str, str]]:
    """Yield a file's bytes as Latin-1 text, decompressed first when it is gzip."""
    if path.stat().st_size > _MAX_RAW_BYTES:
        logger.warning("leak scan: %s is larger than %d bytes and of unknown type; only its name was checked", path.name, _MAX_RAW_BYTES)
        return
    data = path.read_bytes()
    yield "bytes", data.decode("latin-1")
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as stream:
                yield "decompressed bytes", stream.read(_MAX_RAW_BYTES).decode("latin-1")
        except (OSError, EOFError):
            logger.warning("leak scan: %s looks gzip-compressed but cannot be decompressed; its compressed bytes were checked", path.name)


def _json_values(node: object, location: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{location}/{key} (key)", str(key)
            yield from _json_values(value, f"{location}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _json_values(value, f"{location}[{index}]")
    elif node is not None:
        yield location or "/", str(node)


def _nifti_values(path: Path) -> Iterator[tuple[str, str]]:
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception as error:  # noqa: BLE001 - any unreadable file is reported the same way
        raise InputError(f"leak scan: cannot read NIfTI file {path}: {error}") from None
    header = image.header
    for key in ("descrip", "aux_file", "intent_name", "db_name"):
        if key in header:
            yield key, _decode(header[key].item())
    for index, extension in enumerate(getattr(header, "extensions", [])):
        yield f"extension {index}", _decode(extension.get_content())
    # The raw header and extension bytes catch any field the list above misses.  The
    # loaded header reports no offset, so the size is read from the file itself.
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as stream:
        head = stream.read(_NIFTI_HEADER_READ)
    offset = int(np.frombuffer(head[108:112], dtype=header.endianness + "f4")[0]) if len(head) >= 112 else 0
    yield "header bytes", head[: max(offset, 348)].decode("latin-1")


def _safetensors_values(path: Path) -> Iterator[tuple[str, str]]:
    with open(path, "rb") as stream:
        size = int.from_bytes(stream.read(8), "little")
        if size > _MAX_RAW_BYTES:
            raise InputError(f"leak scan: {path} declares a {size}-byte safetensors header; the file is damaged")
        yield "safetensors header", stream.read(size).decode("utf-8", errors="replace")


def scan_folder(folder: str | Path, identifiers: Identifiers) -> list[Finding]:
    """Scan every file and folder name and every file's decoded content for identifiers.

    Args:
        folder: any folder (an export, a release bundle, a report folder).
        identifiers: the source cohort's identifiers, from :func:`identifiers_from_run`.

    Returns:
        One finding per file location and identifier kind; empty when clean.

    Raises:
        InputError: the folder does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"leak scan: {folder} is not a folder")
    patterns = identifiers.patterns()
    findings: list[Finding] = []
    n_files = 0
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        for kind in scan_text(path.name, identifiers, patterns):
            findings.append(Finding(relative, "file name" if path.is_file() else "folder name", kind))
        if not path.is_file():
            continue
        n_files += 1
        try:
            values = list(_file_values(path))
        except Exception as error:  # noqa: BLE001 - any parse failure falls back to the raw bytes
            logger.warning("leak scan: %s could not be parsed (%s); its raw bytes were checked instead", relative, type(error).__name__)
            values = list(_raw_values(path))
        # One search over the whole file first; values are searched one by one only
        # to locate a hit.  The newline keeps matches from spanning two values.
        if not scan_text("\n".join(text for _, text in values), identifiers, patterns):
            continue
        for location, text in values:
            for kind in scan_text(text, identifiers, patterns):
                findings.append(Finding(relative, location, kind))
    logger.info("leak scan: %d files checked against %d identifiers, %d findings", n_files, len(identifiers), len(findings))
    return findings


def _dicom_identifiers(source: Path, identifiers: Identifiers) -> None:
    """Add identifiers read from the DICOM headers of a source file or series folder."""
    files: Iterable[Path] = sorted(source.rglob("*")) if source.is_dir() else [source]
    for path in files:
        if not path.is_file():
            continue
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except (InvalidDicomError, OSError, ValueError, AttributeError, KeyError, TypeError):
            continue
        try:
            elements = list(dataset.iterall())
        except Exception:  # noqa: BLE001 - a file forced open as DICOM may be something else
            continue
        for element in elements:
            keyword = element.keyword
            value = element.value
            if value in (None, "", b""):
                continue
            if element.VR == "PN":
                values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
                identifiers.names.update(str(item) for item in values if str(item).strip())
            elif element.VR == "UI":
                values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
                identifiers.uids.update(str(item) for item in values if not str(item).startswith("1.2.840.10008."))
            elif keyword in ("PatientID", "OtherPatientIDs", "IssuerOfPatientID", "StudyID", "MedicalRecordLocator"):
                identifiers.ids.update(_decode(value).split("\\"))
            elif keyword == "PatientBirthDate":
                identifiers.birth_dates.add(str(value))
            elif keyword == "AccessionNumber":
                identifiers.accession_numbers.add(str(value))
            elif keyword in ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName"):
                identifiers.institutions.add(str(value))


def _path_identifiers(source: Path, identifiers: Identifiers, public_words: set[str]) -> None:
    """Add a source path and its last two components, unless a component is generic.

    A component is generic when it is a common folder word (``series``, ``series1``) or
    equal to a public label name or value (``brain_mr``), which the card states anyway.
    """
    identifiers.paths.add(str(source))
    for name in (source.name, source.parent.name):
        for suffix in (".nii.gz", ".nii", ".dcm"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
        folded = name.casefold()
        if len(name) < _MIN_TOKEN_LENGTH or folded in public_words:
            continue
        if folded in _GENERIC_NAMES or _TRAILING_NUMBER.sub("", folded) in _GENERIC_NAMES:
            continue
        identifiers.paths.add(name)


def _label_words(run_dir: Path) -> set[str]:
    """Return the casefolded label names and values of the run's synthetic index."""
    try:
        index = json.loads((run_dir / "synthetic" / "index.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return set()
    words: set[str] = set()
    for entry in index if isinstance(index, list) else []:
        labels = entry.get("labels") if isinstance(entry, dict) else None
        if isinstance(labels, dict):
            words.update(str(key).casefold() for key in labels)
            words.update(str(value).casefold() for value in labels.values())
    return words


def identifiers_from_run(run_dir: str | Path) -> Identifiers:
    """Collect the source cohort's identifiers from a run's private pseudonym map.

    The map gives each scan's source path and real patient id; DICOM sources are read
    for names, ids, birth dates, accession numbers, institutions and UIDs.

    Raises:
        InputError: the run has no ``private/id_map.json`` or it is malformed.
    """
    id_map_path = Path(run_dir) / "private" / "id_map.json"
    try:
        id_map = json.loads(id_map_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{id_map_path} not found; the leak scanner needs the run's private pseudonym map to know what to look for"
        ) from None
    except json.JSONDecodeError as error:
        raise InputError(f"{id_map_path} is not valid JSON ({error})") from None
    if not isinstance(id_map, dict):
        raise InputError(f"{id_map_path} must map scan ids to {{source, patient_id, source_patient_id}}")
    identifiers = Identifiers()
    public_words = _label_words(Path(run_dir))
    for scan_id, entry in id_map.items():
        if not isinstance(entry, dict) or "source" not in entry:
            raise InputError(f"{id_map_path}: entry {scan_id} has no 'source'")
        source = Path(str(entry["source"]))
        if entry.get("source_patient_id"):
            identifiers.ids.add(str(entry["source_patient_id"]))
        _path_identifiers(source, identifiers, public_words)
        if source.exists() and not source.name.lower().endswith(_NIFTI_SUFFIXES):
            _dicom_identifiers(source, identifiers)
    return identifiers
