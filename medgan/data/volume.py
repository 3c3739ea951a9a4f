"""The in-memory volume that every reader returns.

A :class:`Volume` carries only what geometry, intensity and conditioning need: the
voxel array, the voxel-to-RAS+ affine, the modality and the warnings raised while
loading.  Headers, names, dates and source paths are dropped by the readers, so nothing
downstream (caches, checkpoints, logs, reports) can copy them by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Volume", "MODALITIES"]

MODALITIES = ("CT", "MR")


@dataclass
class Volume:
    """A 3D scan in NIfTI voxel order with its world geometry.

    Attributes:
        array: float32 voxels of shape (X, Y, Z), indexed like NIfTI ``(i, j, k)``.
            CT values are Hounsfield units after each slice's rescale; MR values are
            the scanner's stored values after rescale.
        affine: 4x4 float64 matrix from voxel index to RAS+ world millimetres.
        modality: ``"CT"``, ``"MR"`` or None when the file does not say and the caller
            did not either (NIfTI).
        warnings: problems found while loading that did not stop it.  They never name
            a source path, patient or date.
    """

    array: np.ndarray
    affine: np.ndarray
    modality: str | None = None
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array, dtype=np.float32)
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.array.ndim != 3:
            raise ValueError(f"Volume.array must be 3D (X, Y, Z), got shape {self.array.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError(f"Volume.affine must be 4x4, got shape {self.affine.shape}")
        if self.modality is not None and self.modality not in MODALITIES:
            raise ValueError(f"Volume.modality must be one of {MODALITIES} or None, got {self.modality!r}")

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel edge lengths in mm, the norms of the affine's first three columns."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[0]), float(norms[1]), float(norms[2]))

    @property
    def orientation(self) -> str:
        """Three-letter axis code such as ``"RAS"`` or ``"LPS"`` (nibabel's convention)."""
        import nibabel as nib

        return "".join(nib.aff2axcodes(self.affine))
