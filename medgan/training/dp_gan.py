"""The one front door for a GAN step, private (DP-SGD on the discriminator) or not.

The discriminator is the only network whose input includes patient data, so it alone is
trained with DP-SGD (per-sample gradients and Opacus' DPOptimizer).  The generator only
ever receives the discriminator's output on fake volumes, so it is private by
post-processing.

One discriminator step is one gradient computation over the summed real and fake loss.
Real row ``i`` and fake row ``i`` form a pair whose gradient is clipped as one unit, so
the clipped unit is "one sampled patient plus the fake volume drawn for them".  Removing
a patient removes one pair and changes the clipped sum by at most the clipping norm C.
Clipping real and fake rows separately would let one patient move the sum by 2C,
because the fake batch size follows the real one, and the accountant does not charge
that.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from medgan.errors import ConfigError
from medgan.training.losses import check_loss, discriminator_loss_terms, generator_loss

__all__ = ["DPSettings", "DPGANTrainer", "LabelPrior"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DPSettings:
    """Noise and clipping of the discriminator's DP-SGD; ``None`` means not private.

    ``engine`` selects how per-pair gradients are computed.  ``"vmap"`` vectorises the
    gradient of each pair's loss with torch.func and needs no hooks.  ``"hooks"`` uses
    Opacus' GradSampleModule and sums the per-row gradients pairwise.  Both feed Opacus'
    DPOptimizer, which clips, adds noise and scales.  benchmarks/dp_step.py compares
    their speed; on a quiet 2-core CPU vmap was faster at 32^3.
    """

    noise_multiplier: float
    max_grad_norm: float
    expected_batch_size: float
    engine: str = "vmap"


class LabelPrior:
    """Categorical label distribution, one column at a time, fixed before training.

    Labels for fake volumes come from here, never from the real batch, so the fake half
    of a step reveals nothing about which patients were sampled.
    """

    def __init__(self, probabilities: list[torch.Tensor]) -> None:
        self.probabilities = [p.double() / p.double().sum() for p in probabilities]

    @classmethod
    def from_config(cls, prior: str | dict[str, dict[str, float]], label_names: list[str], label_values: dict[str, list[str]]) -> "LabelPrior":
        """Build the prior from ``train.label_prior`` ('uniform' or {column: {value: weight}})."""
        columns = []
        for name in label_names:
            values = label_values[name]
            if prior == "uniform":
                columns.append(torch.ones(len(values)))
                continue
            if not isinstance(prior, dict) or name not in prior:
                raise ConfigError(f"train.label_prior has no entry for label column {name!r}; give weights for {values}")
            weights = prior[name]
            unknown = sorted(set(weights) - set(values))
            if unknown:
                raise ConfigError(f"train.label_prior[{name!r}] names unknown values {unknown}; known: {values}")
            column = torch.tensor([float(weights.get(value, 0.0)) for value in values])
            if (column < 0).any() or column.sum() <= 0:
                raise ConfigError(f"train.label_prior[{name!r}] needs non-negative weights with a positive sum, got {weights}")
            columns.append(column)
        return cls(columns)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draw ``n`` label rows; returns (n, n_columns) int64."""
        if n == 0:
            return torch.zeros((0, len(self.probabilities)), dtype=torch.long)
        columns = [torch.multinomial(p, n, replacement=True, generator=generator) for p in self.probabilities]
        return torch.stack(columns, dim=1)  # (n, n_columns)


class DPGANTrainer:
    """Owns the two networks, their optimizers and the DP machinery of one training run.

    Args:
        generator: the conditional generator.
        discriminator: the projection discriminator (already checked for DP when ``dp``).
        loss: 'hinge' or 'nonsaturating'.
        lr_generator, lr_discriminator: Adam learning rates.
        dp: DP-SGD settings, or ``None`` for the non-private mode.
        noise_generator: random source of the DP noise (seeded or OS-entropy).
        latent_generator: random source of the generator step's latents and labels.
        prior: label distribution of fake volumes.
        device: where the networks live.
        fake_generator: random source of the discriminator step's fake volumes; defaults
            to ``latent_generator``.  Multi-process runs give each process its own, so
            the generator steps (driven by ``latent_generator``) stay identical everywhere.
        distributed: use Opacus' DistributedDPOptimizer (noise added once, on rank 0,
            then gradients summed over processes).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        loss: str,
        lr_generator: float,
        lr_discriminator: float,
        dp: DPSettings | None,
        noise_generator: torch.Generator | None,
        latent_generator: torch.Generator,
        prior: LabelPrior,
        latent_dim: int,
        device: torch.device,
        fake_generator: torch.Generator | None = None,
        distributed: bool = False,
    ) -> None:
        check_loss(loss, dp=dp is not None)
        self.loss = loss
        self.dp = dp
        self.device = device
        self.latent_dim = latent_dim
        self.latent_generator = latent_generator
        self.fake_generator = fake_generator if fake_generator is not None else latent_generator
        self.prior = prior
        self.generator = generator.to(device)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=lr_generator, betas=(0.5, 0.999))
        d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr_discriminator, betas=(0.5, 0.999))
        if dp is not None and dp.engine not in ("vmap", "hooks"):
            raise ConfigError(f"DP engine {dp.engine!r} is unknown; use 'vmap' or 'hooks'")
        if dp is None or dp.engine == "vmap":
            self.discriminator = discriminator.to(device)
        if dp is None:
            self.d_optimizer = d_optimizer
        else:
            from opacus import GradSampleModule
            from opacus.optimizers import DistributedDPOptimizer, DPOptimizer

            if dp.engine == "hooks":
                self.discriminator = GradSampleModule(discriminator.to(device), loss_reduction="sum")
            # The loss is summed over pairs; DPOptimizer divides the clipped, noised sum by
            # the expected (not the realised) batch size, as its accountant assumes.
            optimizer_class = DistributedDPOptimizer if distributed else DPOptimizer
            self.d_optimizer = optimizer_class(
                d_optimizer,
                noise_multiplier=dp.noise_multiplier,
                max_grad_norm=dp.max_grad_norm,
                expected_batch_size=dp.expected_batch_size,
                loss_reduction="mean",
                generator=noise_generator,
            )

    @property
    def discriminator_module(self) -> nn.Module:
        """The bare discriminator (without Opacus' wrapper), for checkpoints."""
        return getattr(self.discriminator, "_module", self.discriminator)

    def fake_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` fake volumes (no gradient) and their prior labels."""
        labels = self.prior.sample(n, self.fake_generator).to(self.device)
        z = torch.randn(n, self.latent_dim, generator=self.fake_generator).to(self.device)
        with torch.no_grad():
            if n == 0:
                grid = self.generator.grid
                return torch.zeros((0, 1, grid, grid, grid), device=self.device), labels
            volumes = self.generator(z, labels)
        return volumes, labels

    def discriminator_step(
        self, real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor
    ) -> dict[str, float]:
        """Update the discriminator once on B real and B fake volumes (B may be 0).

        Under DP an empty batch still calls the optimizer, which adds noise to a zero sum,
        so every sampled step is both counted and noised, as the accountant assumes.

        Returns:
            losses of the step (NaN for an empty batch): ``d_loss``, ``d_real`` and
            ``d_fake`` (mean scores on real and fake volumes).
        """
        n = real.shape[0]
        if fake.shape[0] != n:
            raise ConfigError(f"the fake batch ({fake.shape[0]}) must match the real batch ({n})")
        self.d_optimizer.zero_grad(set_to_none=True)
        nan = float("nan")
        if n == 0:
            if self.dp is not None:
                for p in self.discriminator.parameters():
                    p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
                self.d_optimizer.step()
            return {"d_loss": nan, "d_real": nan, "d_fake": nan}
        if self.dp is not None and self.dp.engine == "vmap":
            pair_losses, scores = self._vmap_pair_grad_samples(real, real_labels, fake, fake_labels)
            self.d_optimizer.step()
            return {
                "d_loss": float(pair_losses.mean()),
                "d_real": float(scores[:, 0].mean()),
                "d_fake": float(scores[:, 1].mean()),
            }
        volumes = torch.cat([real, fake], dim=0).to(self.device)  # (2B, 1, G, G, G)
        labels = torch.cat([real_labels, fake_labels], dim=0).to(self.device)  # (2B, L)
        scores = self.discriminator(volumes, labels)  # (2B,)
        pair_losses = discriminator_loss_terms(self.loss, scores[:n], scores[n:])  # (B,)
        if self.dp is None:
            pair_losses.mean().backward()
        else:
            with warnings.catch_warnings():
                # The input volumes need no gradient; Opacus' full backward hooks warn about that on every step.
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                pair_losses.sum().backward()
            self._pair_grad_samples(n)
        self.d_optimizer.step()
        return {
            "d_loss": float(pair_losses.mean().detach()),
            "d_real": float(scores[:n].mean().detach()),
            "d_fake": float(scores[n:].mean().detach()),
        }

    def _vmap_pair_grad_samples(
        self, real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Set ``p.grad_sample`` (B, ...) to each pair's loss gradient; return pair losses (B,) and scores (B, 2)."""
        from torch.func import functional_call, grad_and_value, vmap

        module = self.discriminator
        names = [name for name, _ in module.named_parameters()]
        params = {name: p.detach() for name, p in module.named_parameters()}
        buffers = dict(module.named_buffers())

        def pair_loss(weights, real_one, real_label, fake_one, fake_label):
            volumes = torch.stack([real_one, fake_one])  # (2, 1, G, G, G)
            labels = torch.stack([real_label, fake_label])  # (2, L)
            scores = functional_call(module, (weights, buffers), (volumes, labels))  # (2,)
            loss = discriminator_loss_terms(self.loss, scores[0:1], scores[1:2]).sum()
            return loss, scores

        per_pair = vmap(grad_and_value(pair_loss, has_aux=True), in_dims=(None, 0, 0, 0, 0))
        grads, (losses, scores) = per_pair(
            params, real.to(self.device), real_labels.to(self.device), fake.to(self.device), fake_labels.to(self.device)
        )
        for name, p in zip(names, module.parameters()):
            p.grad_sample = grads[name]  # (B, *p.shape)
        return losses.detach(), scores.detach()

    def _pair_grad_samples(self, n: int) -> None:
        """Add real row i's per-sample gradient to fake row i's, so each pair is clipped once."""
        for p in self.discriminator.parameters():
            grad_sample = p.grad_sample
            if isinstance(grad_sample, list):
                raise RuntimeError("per-sample gradients were accumulated over several passes; one backward per step is required")
            p.grad_sample = grad_sample.view(2, n, *p.shape).sum(dim=0)  # (2B, ...) -> (B, ...)

    def generator_step(self, batch_size: int) -> dict[str, float]:
        """One generator update on ``batch_size`` fake volumes with labels from the prior.

        The discriminator's per-sample hooks are disabled for this pass (freezing it with
        ``requires_grad_(False)`` would break Opacus' hooks), and the backward pass only
        reaches the generator's parameters.
        """
        labels = self.prior.sample(batch_size, self.latent_generator).to(self.device)
        z = torch.randn(batch_size, self.latent_dim, generator=self.latent_generator).to(self.device)
        self.g_optimizer.zero_grad(set_to_none=True)
        hooks = getattr(self.discriminator, "disable_hooks", None)
        if hooks is not None:
            self.discriminator.disable_hooks()
        try:
            fake = self.generator(z, labels)
            scores = self.discriminator(fake, labels)
            loss = generator_loss(self.loss, scores)
            loss.backward(inputs=list(self.generator.parameters()))
        finally:
            if hooks is not None:
                self.discriminator.enable_hooks()
        self.g_optimizer.step()
        spread = float(fake.detach().flatten(1).std(dim=0).mean()) if batch_size > 1 else float("nan")
        return {"g_loss": float(loss.detach()), "g_spread": spread}

    def state_dict(self) -> dict:
        """Networks and optimizers (the DP optimizer saves its wrapped Adam's state)."""
        d_optimizer = getattr(self.d_optimizer, "original_optimizer", self.d_optimizer)
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator_module.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": d_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator_module.load_state_dict(state["discriminator"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        getattr(self.d_optimizer, "original_optimizer", self.d_optimizer).load_state_dict(state["d_optimizer"])
