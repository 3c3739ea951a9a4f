"""Preparing a whole cohort for training and evaluation, with a content-keyed cache.

MONAI's PersistentDataset keys its cache on the item it is given (usually the path),
so an edited file or a changed profile can be served stale.  Here the key is the
SHA-256 of the scan's bytes (every file of a DICOM folder, with its name) together
with the whole preprocessing chain (:func:`medgan.data.preprocess.profile_digest`),
the load options and the modality.  A cache entry is one ``.npy`` array named by its
key, beside a ``.json`` with the modality and the load warnings (which never name a
file or patient).
No path, header or patient id is stored, so the cache folder contains nothing
identifying beyond the preprocessed voxels themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medgan.data.config import DataConfig, PreprocessConfig
from medgan.data.manifest import Cohort, ScanRecord
from medgan.data.preprocess import preprocess_volume, profile_digest, profile_record
from medgan.data.reader import load_volume
from medgan.data.volume import MODALITIES
from medgan.errors import InputError, MedganError
from medgan.fileio import atomic_path, write_json_atomic

__all__ = ["PreparedScan", "PreparedCohort", "prepare_cohort", "scan_cache_key", "source_digest"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass
class PreparedScan:
    """One preprocessed scan, known only by pseudonymous ids.

    ``array`` has shape (1, G, G, G), float32 in [-1, 1].
    """

    scan_id: str
    patient_id: str
    split: str
    labels: dict[str, str]
    modality: str
    array: np.ndarray


@dataclass
class PreparedCohort:
    """Every preprocessed scan of a cohort, in manifest order.

    ``warnings`` maps scan ids to their load warnings.  ``profile`` maps each modality
    present to :func:`medgan.data.preprocess.profile_record`, the chain and parameters
    a run should record.
    """

    scans: list[PreparedScan]
    label_names: list[str]
    label_values: dict[str, list[str]]
    grid: int
    warnings: dict[str, list[str]] = field(default_factory=dict)
    profile: dict[str, dict] = field(default_factory=dict)

    def split(self, name: str) -> list[PreparedScan]:
        """Return the scans of one split, in manifest order."""
        return [scan for scan in self.scans if scan.split == name]


def source_digest(source: Path) -> str:
    """Return the SHA-256 of a scan's content: a file's bytes, or a folder's files with their names.

    Folder entries are hashed in sorted name order, so the digest does not depend on
    the order the file system lists them in, but renaming a file changes it.
    """
    digest = hashlib.sha256()
    paths = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")) if source.is_dir() else [source]
    for path in paths:
        digest.update(path.name.encode("utf-8") + b"\0" if source.is_dir() else b"")
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def scan_cache_key(content_digest: str, modality: str | None, data: DataConfig, preprocess: PreprocessConfig) -> str:
    """Return the cache key of one scan: its content, load options and the whole chain.

    ``modality`` is the one requested (None lets a DICOM header decide), so a scan is
    found in the cache before it is decoded.  Both modality branches of the profile are
    in the key, so the key does not depend on the modality the header will give.
    """
    options = {
        "content": content_digest,
        "requested_modality": modality or "from header",
        "allow_identifying_series": data.allow_identifying_series,
        "nonfinite": data.nonfinite,
        "nonfinite_value": data.nonfinite_value,
        "profile": [profile_digest(preprocess, "CT"), profile_digest(preprocess, "MR")],
    }
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode("utf-8")).hexdigest()


def _read_cached(path: Path, grid: int) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        logger.warning("ignored an unreadable cache entry %s (%s)", path.name, error)
        return None
    if array.shape != (1, grid, grid, grid) or array.dtype != np.float32 or not np.all(np.isfinite(array)):
        logger.warning("ignored a cache entry of unexpected shape or type: %s", path.name)
        return None
    return array


def _read_sidecar(path: Path) -> tuple[str, list[str]] | None:
    """Return (modality, warnings) stored beside a cached array, or None when unusable."""
    try:
        payload = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        modality = str(payload["modality"])
        warnings = [str(item) for item in payload["warnings"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if modality not in MODALITIES:
        return None
    return modality, warnings


def _write_cached(path: Path, array: np.ndarray, modality: str, warnings: list[str]) -> None:
    """Write the array, its modality and its load warnings (which never name a file or patient).

    The sidecar is written first, so an array on disk always has its sidecar.
    """
    write_json_atomic(path.with_suffix(".json"), {"modality": modality, "warnings": warnings})
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            np.save(stream, array, allow_pickle=False)


def _prepare_one(scan: ScanRecord, data: DataConfig, preprocess: PreprocessConfig, cache_dir: Path) -> tuple[np.ndarray, str, list[str]]:
    """Return (array, modality, warnings) of one scan, from the cache when possible."""
    content = source_digest(scan.source)
    cached_path = cache_dir / f"{scan_cache_key(content, scan.modality, data, preprocess)}.npy"
    cached = _read_cached(cached_path, preprocess.grid)
    sidecar = _read_sidecar(cached_path) if cached is not None else None
    if cached is not None and sidecar is not None:
        return cached, sidecar[0], sidecar[1]
    volume = load_volume(
        scan.source,
        allow_identifying=data.allow_identifying_series,
        nonfinite=data.nonfinite,
        nonfinite_value=data.nonfinite_value,
        modality=scan.modality,
    )
    if volume.modality is None:
        raise InputError(f"{scan.source}: the modality is unknown; give it in the manifest's 'modality' column (CT or MR)")
    array = preprocess_volume(volume, preprocess, volume.modality)
    _write_cached(cached_path, array, volume.modality, volume.warnings)
    return array, volume.modality, volume.warnings


def prepare_cohort(cohort: Cohort, data: DataConfig, preprocess: PreprocessConfig, cache_dir: Path, progress: bool = True) -> PreparedCohort:
    """Load and preprocess every scan of a cohort, reusing cached results.

    Every scan is tried even after one fails, and all problems are raised together, so
    the user fixes the whole cohort in one pass.

    Args:
        cohort: scans from :func:`medgan.data.manifest.load_manifest` or
            :func:`medgan.data.discover.cohort_from_path`.
        data: load options (identifying series, non-finite policy).
        preprocess: the profile.
        cache_dir: folder for cached arrays; keep it inside the run's ``private/``.
        progress: show a tqdm progress bar on stderr.

    Raises:
        InputError: one or more scans failed; the message lists each with its file.
    """
    from tqdm import tqdm

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    prepared: list[PreparedScan] = []
    problems: list[str] = []
    warnings: dict[str, list[str]] = {}
    for scan in tqdm(cohort.scans, desc="preparing scans", unit="scan", disable=not progress):
        try:
            array, modality, scan_warnings = _prepare_one(scan, data, preprocess, cache_dir)
        except MedganError as error:
            problems.append(f"line {scan.row} ({scan.scan_id}): {error}")
            continue
        for message in scan_warnings:
            logger.warning("%s: %s", scan.scan_id, message)
        if scan_warnings:
            warnings[scan.scan_id] = scan_warnings
        prepared.append(
            PreparedScan(
                scan_id=scan.scan_id,
                patient_id=scan.patient_id,
                split=scan.split,
                labels=dict(scan.labels),
                modality=modality,
                array=array,
            )
        )
    if problems:
        listing = "\n  ".join(problems)
        raise InputError(f"{len(problems)} of {len(cohort.scans)} scan(s) could not be prepared:\n  {listing}")
    logger.info("prepared %d scans at grid %d", len(prepared), preprocess.grid)
    return PreparedCohort(
        scans=prepared,
        label_names=list(cohort.label_names),
        label_values={name: list(values) for name, values in cohort.label_values.items()},
        grid=preprocess.grid,
        warnings=warnings,
        profile={modality: profile_record(preprocess, modality) for modality in sorted({scan.modality for scan in prepared})},
    )
