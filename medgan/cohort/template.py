"""The public anatomy every simulated patient is derived from, resampled to a model grid.

The source is the ICBM152 2009a symmetric T1 template with its grey- and white-matter
probability maps (197 x 233 x 189 voxels at 1 mm, MNI space).  It is skull-stripped with
the union of the two tissue maps, intensity-normalised so that white matter is
:data:`WM_REFERENCE`, and resampled once per grid onto a cube of :data:`FIELD_OF_VIEW_MM`
centred on the brain, so every later step works on ``G**3`` voxels instead of 8.7 million.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from medgan.errors import ConfigError, InputError
from medgan.fileio import sha256_file

__all__ = [
    "TemplateGrid",
    "load_template",
    "default_template_dir",
    "GRIDS",
    "FIELD_OF_VIEW_MM",
    "WM_REFERENCE",
    "TEMPLATE_FILES",
]

logger = logging.getLogger(__name__)

GRIDS = (16, 32, 64, 128)
# The skull-stripped brain spans about 145 x 181 x 154 mm, so a 192 mm cube contains it with
# a margin for the random deformations, and gives round spacings (12, 6, 3, 1.5 mm).
FIELD_OF_VIEW_MM = 192.0
# Mean white-matter intensity after normalisation, in arbitrary MR units.
WM_REFERENCE = 1000.0
TEMPLATE_FILES = {
    "t1": "mni152_2009a_sym_t1.nii.gz",
    "gm": "mni152_2009a_sym_gm.nii.gz",
    "wm": "mni152_2009a_sym_wm.nii.gz",
}
_TEMPLATE_ENV = "MEDGAN_TEMPLATE_DIR"


@dataclass(frozen=True)
class TemplateGrid:
    """The template on a ``(G, G, G)`` grid.

    Attributes:
        t1: skull-stripped T1, white matter at :data:`WM_REFERENCE`, shape (G, G, G).
        gm: grey-matter probability in [0, 1].
        wm: white-matter probability in [0, 1].
        brain: soft brain mask in [0, 1].
        affine: voxel-to-RAS+ (MNI millimetres) matrix of the grid.
        spacing_mm: isotropic voxel spacing.
        sha256: SHA-256 of the three source files, keyed by role.
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    brain: np.ndarray
    affine: np.ndarray
    spacing_mm: float
    sha256: dict[str, str]

    @property
    def grid(self) -> int:
        """Edge length of the cube in voxels."""
        return int(self.t1.shape[0])


def default_template_dir() -> Path:
    """Return the template folder: ``$MEDGAN_TEMPLATE_DIR`` or the repository's copy.

    The templates are not part of the installed package; a source checkout has them in
    ``data_samples/templates`` beside the ``medgan`` folder.
    """
    from_env = os.environ.get(_TEMPLATE_ENV)
    if from_env:
        return Path(from_env)
    return Path(__file__).resolve().parents[2] / "data_samples" / "templates"


def _check_grid(grid: int) -> None:
    if grid not in GRIDS:
        raise ConfigError(f"grid {grid} is not supported; use one of {', '.join(map(str, GRIDS))}")


def _read_sources(template_dir: Path) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, str]]:
    missing = [name for name in TEMPLATE_FILES.values() if not (template_dir / name).is_file()]
    if missing:
        raise InputError(
            f"template folder {template_dir} lacks {', '.join(missing)}; pass the folder holding the ICBM152 2009a "
            f"files (data_samples/templates in a source checkout) or set {_TEMPLATE_ENV}"
        )
    arrays: dict[str, np.ndarray] = {}
    digests: dict[str, str] = {}
    affine = None
    for role, name in TEMPLATE_FILES.items():
        path = template_dir / name
        image = nib.load(str(path))
        data = np.asarray(image.get_fdata(dtype=np.float32))
        if data.ndim != 3:
            raise InputError(f"template {path} has shape {data.shape}; expected a 3D volume")
        if affine is None:
            affine = image.affine
        elif data.shape != arrays["t1"].shape or not np.allclose(image.affine, affine):
            raise InputError(f"template {path} is not on the same grid as {TEMPLATE_FILES['t1']}")
        arrays[role] = data
        digests[role] = sha256_file(path)
    assert affine is not None
    return arrays, np.asarray(affine, dtype=np.float64), digests


def _brain_mask(gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Return a filled binary brain mask: tissue probability above a quarter, ventricles included."""
    tissue = (gm + wm) / max(float(gm.max()), float(wm.max()), 1e-6)
    mask = ndimage.binary_fill_holes(tissue > 0.25)
    # Keep only the largest component, so no isolated specks of the tissue maps survive.
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
    return mask


def _block_mean(volume: np.ndarray, affine: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ``factor``-cubes of voxels, returning the smaller volume and its affine."""
    if factor <= 1:
        return volume, affine
    shape = [extent // factor for extent in volume.shape]
    cropped = volume[: shape[0] * factor, : shape[1] * factor, : shape[2] * factor]
    # (X, Y, Z) -> (X/f, f, Y/f, f, Z/f, f) -> mean over the block axes.
    blocks = cropped.reshape(shape[0], factor, shape[1], factor, shape[2], factor).mean(axis=(1, 3, 5))
    # The first block's centre sits (f - 1) / 2 source voxels from the first voxel.
    scaled = affine.copy()
    scaled[:3, :3] = affine[:3, :3] * factor
    scaled[:3, 3] = (affine @ np.append(np.full(3, (factor - 1) / 2.0), 1.0))[:3]
    return blocks, scaled


def _resample(volume: np.ndarray, source_affine: np.ndarray, target_affine: np.ndarray, grid: int, spacing_mm: float) -> np.ndarray:
    """Resample ``volume`` onto the target grid with anti-aliasing and linear interpolation.

    A block mean first reduces the source to about half the target spacing, which is
    much faster than a wide Gaussian on 8.7 million voxels; a Gaussian then removes what
    the target grid cannot represent.
    """
    source_spacing = float(np.abs(np.diag(source_affine)[:3]).mean())
    factor = max(1, int(spacing_mm / source_spacing / 2.0))
    reduced, reduced_affine = _block_mean(volume, source_affine, factor)
    reduced_spacing = source_spacing * factor
    sigma = max(0.0, 0.5 * (spacing_mm / reduced_spacing - 1.0))
    smoothed = ndimage.gaussian_filter(reduced, sigma) if sigma > 0 else reduced
    # Target voxel index -> world mm -> source voxel index, as one affine map.
    target_to_source = np.linalg.inv(reduced_affine) @ target_affine
    return ndimage.affine_transform(
        smoothed,
        target_to_source[:3, :3],
        offset=target_to_source[:3, 3],
        output_shape=(grid, grid, grid),
        order=1,
        mode="constant",
        cval=0.0,
    ).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _load_cached(template_dir: str, grid: int) -> TemplateGrid:
    arrays, source_affine, digests = _read_sources(Path(template_dir))
    mask = _brain_mask(arrays["gm"], arrays["wm"])
    t1 = arrays["t1"] * mask
    wm_scale = float(arrays["wm"].max())
    white = arrays["wm"] > 0.9 * wm_scale
    t1 = t1 * (WM_REFERENCE / float(t1[white].mean()))

    # Centre the cube on the brain's bounding box so the deformations have room on every side.
    corners = np.argwhere(mask)
    centre_voxel = (corners.min(axis=0) + corners.max(axis=0)) / 2.0
    centre_mm = (source_affine @ np.append(centre_voxel, 1.0))[:3]
    spacing_mm = FIELD_OF_VIEW_MM / grid
    affine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    affine[:3, 3] = centre_mm - spacing_mm * (grid - 1) / 2.0

    resampled = {
        "t1": _resample(t1, source_affine, affine, grid, spacing_mm),
        "gm": _resample(arrays["gm"] / max(float(arrays["gm"].max()), 1e-6), source_affine, affine, grid, spacing_mm),
        "wm": _resample(arrays["wm"] / max(wm_scale, 1e-6), source_affine, affine, grid, spacing_mm),
        "brain": _resample(mask.astype(np.float32), source_affine, affine, grid, spacing_mm),
    }
    for array in resampled.values():
        array.setflags(write=False)
    logger.debug("template resampled to %d^3 at %.2f mm", grid, spacing_mm)
    return TemplateGrid(affine=affine, spacing_mm=spacing_mm, sha256=digests, **resampled)


def load_template(grid: int, template_dir: str | Path | None = None) -> TemplateGrid:
    """Load the ICBM152 template resampled to ``grid``; cached per folder and grid.

    The arrays of the returned grid are read-only, because the cache shares them
    between callers.

    Raises:
        ConfigError: ``grid`` is not one of :data:`GRIDS`.
        InputError: the template files are missing or disagree in geometry.
    """
    _check_grid(grid)
    folder = Path(template_dir) if template_dir is not None else default_template_dir()
    return _load_cached(str(folder.resolve()), grid)
