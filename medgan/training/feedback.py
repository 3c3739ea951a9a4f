"""Training feedback: TensorBoard, sample slice images and warnings about a failing GAN.

Everything here can include statistics of real training scans (the discriminator's
scores on them), so it is written only under the run's ``private/`` folder.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan.fileio import atomic_path

__all__ = ["TrainingMonitor", "progress_postfix", "slice_grid", "save_slice_png"]

logger = logging.getLogger(__name__)

_WINDOW = 20
_WIN_LOSS = 0.05
_COLLAPSE_RATIO = 0.1


def slice_grid(volumes: torch.Tensor) -> np.ndarray:
    """Return the middle axial slice of each volume (B, 1, G, G, G) side by side, as (G, B*G) in [0, 1].

    Each slice follows the neurological convention for RAS+ data: the patient's right (+x) on
    the image's right and anterior (+y) up.
    """
    volumes = volumes.detach().float().cpu()
    middle = volumes.shape[-1] // 2
    slices = volumes[:, 0, :, :, middle].transpose(1, 2).flip(1)  # (B, X, Y) -> (B, Y, X), anterior up
    row = torch.cat(list(slices), dim=1)  # (Y, B*X)
    return ((row.clamp(-1, 1) + 1) / 2).numpy()


def save_slice_png(image: np.ndarray, path: Path, scale: int = 4) -> None:
    """Write a grey-scale image in [0, 1] as PNG, enlarged ``scale`` times (nearest), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    enlarged = np.kron(image, np.ones((scale, scale)))
    with atomic_path(path) as temporary:
        plt.imsave(temporary, enlarged, cmap="gray", vmin=0.0, vmax=1.0, format="png")


def _json_value(value: Any) -> Any:
    """Return ``value``, or None where it is a non-finite float that strict JSON cannot hold."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def progress_postfix(values: dict[str, Any]) -> dict[str, str]:
    """Return the progress bar's loss fields for one step.

    An empty Poisson batch has no real scans, so there is no discriminator loss; the bar
    shows ``d=empty`` in place of ``d=nan``.
    """
    fields: dict[str, str] = {}
    for key, name in (("d", "d_loss"), ("g", "g_loss")):
        value = values.get(name)
        if key == "d" and values.get("batch") == 0:
            fields[key] = "empty"
        elif isinstance(value, (int, float)) and math.isfinite(value):
            fields[key] = f"{value:.3f}"
        else:
            fields[key] = "n/a"
    return fields


class TrainingMonitor:
    """Writes the private training log and TensorBoard, and warns when training fails.

    Two failures are watched: the discriminator winning outright (its loss near zero over
    a window, so the generator gets no useful gradient) and sample collapse (the spread
    across a batch of generated volumes falls far below its early value).
    """

    def __init__(self, log_path: Path, tensorboard_dir: Path | None) -> None:
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(tensorboard_dir))
        self.d_losses: deque[float] = deque(maxlen=_WINDOW)
        self.first_spread: float | None = None
        self.warnings: list[str] = []

    def record(self, step: int, values: dict[str, Any]) -> None:
        """Append one step's values to the log and TensorBoard, then run the checks.

        JSON has no NaN or infinity, and the report and dashboard readers parse the log
        strictly, so a non-finite value (the real-scan losses of an empty Poisson batch)
        is written as null.
        """
        row = {"step": step, **{name: _json_value(value) for name, value in values.items()}}
        with open(self.log_path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(row, allow_nan=False) + "\n")
        if self.writer is not None:
            for name, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"train/{name}", value, step)
        self._check(step, values)

    def image(self, step: int, image: np.ndarray, path: Path) -> None:
        """Save a sample slice image to ``path`` and to TensorBoard."""
        save_slice_png(image, path)
        if self.writer is not None:
            self.writer.add_image("samples/middle_slices", image[None], step)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            logger.warning(message)

    def _check(self, step: int, values: dict[str, Any]) -> None:
        d_loss = values.get("d_loss")
        if isinstance(d_loss, float) and math.isfinite(d_loss):
            self.d_losses.append(d_loss)
        if len(self.d_losses) == _WINDOW and max(self.d_losses) < _WIN_LOSS:
            self._warn(
                f"step {step}: the discriminator wins outright (loss < {_WIN_LOSS} for {_WINDOW} steps); "
                "the generator gets little signal. Lower train.lr_discriminator or model.disc_channels"
            )
        spread = values.get("g_spread")
        if isinstance(spread, float) and math.isfinite(spread):
            if self.first_spread is None and step >= 1:
                self.first_spread = spread
            elif self.first_spread and step >= _WINDOW and spread < _COLLAPSE_RATIO * self.first_spread:
                self._warn(
                    f"step {step}: generated samples are collapsing (spread {spread:.3g} vs {self.first_spread:.3g} "
                    "early on); check the sample images in private/samples"
                )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
