"""Training curves that may be shown in the dashboard.

``private/train_log.jsonl`` also records discriminator losses on real scans, which are
statistics of real training data that epsilon does not cover.  Only an allowlist of
columns leaves this module: the step, the privacy spent so far and the generator's
losses (computed on synthetic samples by the privatised discriminator, so they are
post-processing of a differentially private output).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

__all__ = ["SAFE_COLUMNS", "read_safe_curves"]

logger = logging.getLogger(__name__)

SAFE_COLUMNS = ("step", "epsilon", "loss_g", "g_loss", "generator_loss", "loss_generator", "lr_g")


def read_safe_curves(path: Path) -> dict[str, list[float]]:
    """Return the allowlisted numeric columns of a JSON-lines training log.

    Lines that are not JSON objects are skipped and counted in a log message, because a
    log cut short by a crash should still plot.  A missing file returns ``{}``.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    columns: dict[str, list[float]] = {}
    skipped = 0
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), (int, float)):
            rows.append(record)
        else:
            skipped += 1
    if skipped:
        logger.warning("skipped %d malformed lines of the training log", skipped)
    for name in SAFE_COLUMNS:
        values = [float(row[name]) if isinstance(row.get(name), (int, float)) else math.nan for row in rows]
        if any(not math.isnan(value) for value in values):
            columns[name] = values
    return columns
