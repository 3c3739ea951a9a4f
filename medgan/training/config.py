"""Configuration of the training loop and of sampling from the trained generator."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from medgan.configbase import Section

__all__ = ["TrainConfig", "GenerateConfig"]


class TrainConfig(Section):
    """Optimisation settings shared by the DP and the non-private mode."""

    steps: int = Field(200, ge=1, description="Discriminator/generator step pairs (an upper bound when the budget runs out).")
    batch_size: int = Field(4, ge=1, description="Expected number of patients per Poisson-sampled step.")
    generator_batch_size: int = Field(4, ge=1, description="Fixed batch size of the generator step.")
    lr_generator: float = Field(2e-4, gt=0)
    lr_discriminator: float = Field(2e-4, gt=0)
    loss: Literal["hinge", "nonsaturating", "wgan-gp"] = Field("hinge", description="GAN loss; wgan-gp is rejected under DP.")
    label_prior: Literal["uniform"] | dict[str, dict[str, float]] = Field(
        "uniform", description="Label distribution of the generator step; from config, never from the data unless charged."
    )
    seed: int | None = Field(0, description="Seed for seeded (resumable) mode; None draws one from the OS.")
    checkpoint_every: int = Field(50, ge=1, description="Steps between checkpoints.")
    sample_every: int = Field(50, ge=1, description="Steps between sample images and TensorBoard image grids.")
    device: str = Field("auto", description="'auto', 'cpu' or 'cuda'.")
    dp_engine: Literal["vmap", "hooks"] = Field(
        "vmap",
        description="Per-patient gradients of the DP discriminator: torch.func vmap (fast) or Opacus hooks (reference).",
    )


class GenerateConfig(Section):
    """How many synthetic volumes the pipeline draws from the trained generator."""

    n_per_condition: int = Field(4, ge=1, description="Synthetic volumes per label combination.")
    seed: int = Field(1234, description="Seed of the latent vectors, so a run's synthetic set can be regenerated.")
