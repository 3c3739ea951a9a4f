"""Layout of a run folder, split into a public part and a private part.

Everything under ``private/`` may name real files or contain statistics of real
training scans: the pseudonym map, the discriminator, real-data loss curves and
nearest-neighbour previews. That folder never leaves the site.  Everything else in the run folder (reports,
synthetic volumes, the generator, the export staging area) is written so that it may be
shown to reviewers and, after review, released.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout"]


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run folder; :meth:`create` makes the folders."""

    root: Path

    # Public part.
    @property
    def config(self) -> Path:
        """Resolved configuration with site paths replaced by placeholders."""
        return self.root / "config.yaml"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def report_assets(self) -> Path:
        """Images referenced by report.html (synthetic slices and plots only)."""
        return self.root / "report_assets"

    @property
    def synthetic(self) -> Path:
        return self.root / "synthetic"

    @property
    def generator(self) -> Path:
        """Release artefact: generator weights (safetensors) and their config."""
        return self.root / "generator"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def release(self) -> Path:
        """Default folder of a reviewed release made by ``medgan export --approved-only``."""
        return self.root / "release"

    @property
    def review(self) -> Path:
        """Audit log and reader-study records."""
        return self.root / "review"

    # Private part.
    @property
    def private(self) -> Path:
        return self.root / "private"

    @property
    def private_config(self) -> Path:
        """Resolved configuration including site paths."""
        return self.private / "config_resolved.yaml"

    @property
    def id_map(self) -> Path:
        """Pseudonym to source-path map; the only link back to real files."""
        return self.private / "id_map.json"

    @property
    def salt(self) -> Path:
        return self.private / "salt"

    @property
    def checkpoints(self) -> Path:
        """Full training state (discriminator, optimizers, random states, accountant)."""
        return self.private / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard logs; private because they include losses on real scans."""
        return self.private / "tensorboard"

    @property
    def private_evaluation(self) -> Path:
        """Nearest-training-scan previews and per-pair distances for reviewers."""
        return self.private / "evaluation"

    @property
    def samples(self) -> Path:
        """Sample slice images written during training."""
        return self.private / "samples"

    @property
    def train_log(self) -> Path:
        return self.private / "train_log.jsonl"

    def create(self) -> "RunLayout":
        """Create the run folder and its standard sub-folders; return ``self``."""
        for folder in (self.root, self.synthetic, self.generator, self.review, self.private, self.checkpoints):
            folder.mkdir(parents=True, exist_ok=True)
        return self
