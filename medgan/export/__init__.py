"""Export of synthetic datasets: NIfTI, de-identified DICOM, dataset card, leak scan, release bundle.

``export_run`` and ``ExportSummary`` are imported on first use, so that reading the
configuration (which imports ``medgan.export.config``) does not load pydicom.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExportSummary", "export_run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from medgan.export import run

        return getattr(run, name)
    raise AttributeError(f"module 'medgan.export' has no attribute {name!r}")
