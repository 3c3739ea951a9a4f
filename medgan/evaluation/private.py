"""Reviewer evidence that stays in the run's private area.

Mid-slice previews of each synthetic scan beside its nearest training scan contain real
patient anatomy, so they are written only under ``private/evaluation``.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from medgan.fileio import write_bytes_atomic, write_json_atomic

__all__ = ["write_private_evidence", "preview_png"]

logger = logging.getLogger(__name__)


def preview_png(synthetic: np.ndarray, train: np.ndarray, title: str) -> bytes:
    """Return a PNG with the three mid-slices of a synthetic scan above those of a training scan."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(6, 4))
    for row, volume in enumerate((synthetic, train)):
        data = volume.reshape(volume.shape[-3:])  # (G, G, G)
        middle = [size // 2 for size in data.shape]
        slices = (data[middle[0]], data[:, middle[1]], data[:, :, middle[2]])
        for column, image in enumerate(slices):
            axes[row, column].imshow(np.rot90(image), cmap="gray", vmin=-1, vmax=1)
            axes[row, column].axis("off")
    axes[0, 0].set_title("synthetic", fontsize=8, loc="left")
    axes[1, 0].set_title("nearest training scan", fontsize=8, loc="left")
    figure.suptitle(title, fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def write_private_evidence(
    folder: Path,
    evaluation_id: str,
    sets: dict[str, list[Any]],
    volumes: dict[str, np.ndarray],
    to_train: Any,
    to_holdout: Any,
    memorization: dict[str, Any],
    max_previews: int = 20,
) -> None:
    """Write ``nearest.json`` and previews of flagged and closest scans into ``folder``.

    Previews are made for every flagged scan and then for the closest others, up to
    ``max_previews`` in total.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, scan in enumerate(sets["synthetic"]):
        rows.append(
            {
                "synthetic": scan.scan_id,
                "nearest_train": sets["train"][int(to_train.index[index])].scan_id,
                "distance_train": float(to_train.distance[index]),
                "shift_voxels": [int(v) for v in to_train.shift[index]],
                "flipped": bool(to_train.flipped[index]),
                "nearest_holdout": sets["holdout"][int(to_holdout.index[index])].scan_id,
                "distance_holdout": float(to_holdout.distance[index]),
            }
        )
    flagged = {entry["synthetic"] for entry in memorization["flagged"]}
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["synthetic"] not in flagged, rows[i]["distance_train"]))
    previews = {}
    for index in order[:max_previews]:
        name = f"nearest-{Path(rows[index]['synthetic']).name.split('.')[0]}.png"
        train_volume = volumes["train"][int(to_train.index[index])]
        title = f"{rows[index]['synthetic']} vs {rows[index]['nearest_train']}: distance {rows[index]['distance_train']:.4f}"
        write_bytes_atomic(folder / name, preview_png(volumes["synthetic"][index], train_volume, title))
        previews[rows[index]["synthetic"]] = name
    write_json_atomic(folder / "nearest.json", {"evaluation_id": evaluation_id, "rule": memorization["rule"], "scans": rows, "previews": previews})
    logger.info("wrote reviewer evidence for %d synthetic scans to the private evaluation folder", len(rows))
