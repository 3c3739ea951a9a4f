"""Run context shared by the dashboard pages: the selected run, its report and safe paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medgan.errors import InputError
from medgan.review.approvals import flagged_files
from medgan.review.paths import resolve_inside
from medgan.review.volumes import VolumeKey, volume_key

__all__ = ["RunContext", "SYNTHETIC_NAME", "modality_of", "scan_modality", "similarity_threshold", "memorization_entry", "synthetic_key", "format_interval"]

SYNTHETIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.nii(\.gz)?$")


@dataclass(frozen=True)
class RunContext:
    """The run a page shows."""

    runs_root: Path
    name: str
    path: Path
    report: dict[str, Any]

    @property
    def evaluation_id(self) -> str | None:
        evaluation = self.report.get("evaluation") or {}
        return evaluation.get("id")

    @property
    def synthetic(self) -> list[dict[str, Any]]:
        return [entry for entry in self.report.get("synthetic") or [] if isinstance(entry, dict)]

    def synthetic_path(self, file: str) -> Path:
        """Return the path of a synthetic file named in the report, inside the runs folder.

        Raises:
            InputError: the name is not a plain NIfTI file name or leaves the runs folder.
        """
        name = Path(str(file)).name if str(file).startswith("synthetic/") else str(file)
        if not SYNTHETIC_NAME.match(name):
            raise InputError(f"synthetic file name {file!r} in report.json is invalid; expected a name like syn-0000.nii.gz")
        return resolve_inside(self.runs_root, f"{self.name}/synthetic/{name}")


def modality_of(report: dict[str, Any]) -> str:
    """Return ``CT`` or ``MR`` from the report's data section (``CT`` when neither field names MR)."""
    data = report.get("data") or {}
    for value in (data.get("modality"), data.get("profile")):
        if isinstance(value, str) and ("mr" in value.lower()):
            return "MR"
    return "CT"


def scan_modality(report: dict[str, Any], file: str) -> tuple[str, str]:
    """Return the modality of one synthetic scan and where it came from.

    The index entry's ``modality`` decides when present.  Otherwise a condition label
    value with a ``ct`` or ``mr``/``mri`` word (``brain_mr``) gives a guess, and the run's
    data section the last fallback.
    """
    entry = next((item for item in report.get("synthetic") or [] if isinstance(item, dict) and item.get("file") == file), {})
    if str(entry.get("modality", "")).upper() in ("CT", "MR"):
        return str(entry["modality"]).upper(), "recorded"
    labels = entry.get("labels") if isinstance(entry.get("labels"), dict) else {}
    words = {word for value in labels.values() for word in re.split(r"[^a-z0-9]+", str(value).lower())}
    if ("mr" in words or "mri" in words) != ("ct" in words):
        return ("MR" if "mr" in words or "mri" in words else "CT"), "guessed from the condition label"
    return modality_of(report), "not recorded, so CT is assumed"


def similarity_threshold(memorization: dict[str, Any]) -> float | None:
    """Return the similarity threshold, whether the report stores a number or a dict."""
    threshold = memorization.get("threshold")
    if isinstance(threshold, dict):
        threshold = threshold.get("similarity_threshold")
    return float(threshold) if isinstance(threshold, (int, float)) else None


def memorization_entry(report: dict[str, Any], file: str) -> dict[str, Any] | None:
    """Return ``{nearest_train, similarity, threshold, flagged}`` for ``file``, or None.

    Reads both per-scan layouts: ``similarity``/``flagged`` and the evaluation stage's
    ``similarity_train``/``authentic``.
    """
    memorization = report.get("memorization") or {}
    flagged = {Path(str(item.get("synthetic", ""))).name: item for item in memorization.get("flagged") or []}
    is_flagged = file in flagged_files(report)
    for item in memorization.get("per_scan") or []:
        if Path(str(item.get("synthetic", ""))).name == file:
            similarity = item.get("similarity", item.get("similarity_train"))
            threshold = flagged.get(file, {}).get("threshold", similarity_threshold(memorization))
            return {"nearest_train": item.get("nearest_train"), "similarity": similarity, "threshold": threshold, "flagged": is_flagged}
    if file in flagged:
        return {"nearest_train": flagged[file].get("nearest_train"), "similarity": flagged[file].get("similarity"), "threshold": flagged[file].get("threshold"), "flagged": True}
    return None


def synthetic_key(context: RunContext, file: str) -> VolumeKey:
    """Return the content key of one synthetic file of the run."""
    return volume_key(context.synthetic_path(file))


def format_interval(value: Any) -> str:
    """Format a metric value, a ``{value, ci}`` dict or a ``[low, high]`` pair for a table."""
    if isinstance(value, dict):
        point = value.get("value", value.get("mean", value.get("estimate")))
        if point is None:
            return str(value.get("status", "none"))
        interval = value.get("ci") or value.get("ci95") or ([value["ci_low"], value["ci_high"]] if "ci_low" in value and "ci_high" in value else None)
        text = f"{point:.4g}" if isinstance(point, (int, float)) else str(point)
        if isinstance(interval, (list, tuple)) and len(interval) == 2 and all(isinstance(bound, (int, float)) for bound in interval):
            text += f" [{interval[0]:.4g}, {interval[1]:.4g}]"
        return text
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
