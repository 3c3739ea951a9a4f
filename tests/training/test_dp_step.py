"""One DP discriminator step against a hand-written per-patient clip-and-sum oracle."""

from __future__ import annotations

import copy

import pytest
import torch

from medgan.errors import PrivacyError
from medgan.models import build_discriminator, build_generator
from medgan.training.dp_gan import DPGANTrainer, DPSettings, LabelPrior
from medgan.training.losses import check_loss, discriminator_loss_terms
from tests.training.conftest import TINY_MODEL

GRID = 16
CLIP = 0.05
EXPECTED_BATCH = 3.0


def _trainer(discriminator, *, noise=0.0, clip=CLIP, dp=True, loss="hinge", engine="vmap"):
    torch.manual_seed(1)
    generator = build_generator(TINY_MODEL, GRID, [2])
    settings = DPSettings(noise, clip, EXPECTED_BATCH, engine) if dp else None
    return DPGANTrainer(
        generator,
        discriminator,
        loss=loss,
        lr_generator=1e-3,
        lr_discriminator=1e-3,
        dp=settings,
        noise_generator=torch.Generator().manual_seed(7),
        latent_generator=torch.Generator().manual_seed(8),
        prior=LabelPrior([torch.ones(2)]),
        latent_dim=TINY_MODEL.latent_dim,
        device=torch.device("cpu"),
    )


def _batch(n, seed=3):
    rng = torch.Generator().manual_seed(seed)
    real = torch.rand(n, 1, GRID, GRID, GRID, generator=rng) * 2 - 1
    fake = torch.rand(n, 1, GRID, GRID, GRID, generator=rng) * 2 - 1
    real_labels = torch.randint(0, 2, (n, 1), generator=rng)
    fake_labels = torch.randint(0, 2, (n, 1), generator=rng)
    return real, real_labels, fake, fake_labels


def _oracle(discriminator, real, real_labels, fake, fake_labels, clip, loss="hinge"):
    """Per patient: gradient of (real loss + fake loss), clipped to ``clip``; summed; divided as Opacus does."""
    total = [torch.zeros_like(p) for p in discriminator.parameters()]
    for i in range(real.shape[0]):
        discriminator.zero_grad()
        pair = discriminator_loss_terms(
            loss, discriminator(real[i : i + 1], real_labels[i : i + 1]), discriminator(fake[i : i + 1], fake_labels[i : i + 1])
        )
        pair.sum().backward()
        grads = [p.grad.detach().clone() for p in discriminator.parameters()]
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        factor = min(1.0, clip / (float(norm) + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads)]
    return [t / EXPECTED_BATCH for t in total]


ENGINES = ["vmap", "hooks"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("loss", ["hinge", "nonsaturating"])
def test_dp_step_matches_clip_and_sum_oracle(loss, engine):
    torch.manual_seed(0)
    discriminator = build_discriminator(TINY_MODEL, GRID, [2], dp=True)
    reference = copy.deepcopy(discriminator)
    trainer = _trainer(discriminator, loss=loss, engine=engine)
    batch = _batch(4)
    trainer.discriminator_step(*batch)
    expected = _oracle(reference, *batch, CLIP, loss=loss)
    got = [p.grad for p in trainer.discriminator_module.parameters()]
    assert all(torch.allclose(g, e, rtol=1e-4, atol=1e-8) for g, e in zip(got, expected))


def test_dp_step_clipping_active():
    # The oracle test only means something if at least one pair gradient exceeds C.
    torch.manual_seed(0)
    discriminator = build_discriminator(TINY_MODEL, GRID, [2], dp=True)
    real, real_labels, fake, fake_labels = _batch(1)
    pair = discriminator_loss_terms("hinge", discriminator(real, real_labels), discriminator(fake, fake_labels))
    pair.sum().backward()
    norm = torch.sqrt(sum((p.grad**2).sum() for p in discriminator.parameters()))
    assert norm > CLIP


def _clipped_sum(discriminator, batch, engine):
    trainer = _trainer(copy.deepcopy(discriminator), engine=engine)
    trainer.discriminator_step(*batch)
    return torch.cat([p.grad.flatten() for p in trainer.discriminator_module.parameters()]) * EXPECTED_BATCH


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("removed", [0, 2, 4])
def test_dp_step_patient_sensitivity_bounded(removed, engine):
    torch.manual_seed(0)
    discriminator = build_discriminator(TINY_MODEL, GRID, [2], dp=True)
    batch = _batch(5)
    keep = [i for i in range(5) if i != removed]
    without = tuple(t[keep] for t in batch)
    distance = (_clipped_sum(discriminator, batch, engine) - _clipped_sum(discriminator, without, engine)).norm()
    assert distance <= CLIP * (1 + 1e-4)


def test_dp_step_separate_clipping_would_exceed_clip():
    # Planted positive: clipping real and fake rows apart lets one patient move the sum by ~2C.
    torch.manual_seed(0)
    discriminator = build_discriminator(TINY_MODEL, GRID, [2], dp=True)
    real, real_labels, fake, fake_labels = _batch(1)
    parts = []
    for volume, labels, sign in ((real, real_labels, -1.0), (fake, fake_labels, 1.0)):
        discriminator.zero_grad()
        torch.relu(1.0 + sign * discriminator(volume, labels)).sum().backward()
        grads = torch.cat([p.grad.flatten() for p in discriminator.parameters()])
        parts.append(grads * min(1.0, CLIP / float(grads.norm())))
    assert (parts[0] + parts[1]).norm() > CLIP * 1.05


@pytest.mark.parametrize("engine", ENGINES)
def test_dp_step_empty_batch_adds_noise(engine):
    torch.manual_seed(0)
    discriminator = build_discriminator(TINY_MODEL, GRID, [2], dp=True)
    trainer = _trainer(discriminator, noise=1.0, engine=engine)
    trainer.discriminator_step(*_batch(0))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.discriminator_module.parameters())


def test_dp_step_empty_batch_returns_nan_losses():
    torch.manual_seed(0)
    trainer = _trainer(build_discriminator(TINY_MODEL, GRID, [2], dp=True), noise=1.0)
    losses = trainer.discriminator_step(*_batch(0))
    assert losses["d_loss"] != losses["d_loss"]


def test_dp_step_noise_matches_std():
    # Noise 1.0 and clip C on an empty batch: each coordinate is N(0, C^2) / expected batch size.
    torch.manual_seed(0)
    trainer = _trainer(build_discriminator(TINY_MODEL, GRID, [2], dp=True), noise=1.0)
    trainer.discriminator_step(*_batch(0))
    noise = torch.cat([p.grad.flatten() for p in trainer.discriminator_module.parameters()]) * EXPECTED_BATCH
    assert abs(float(noise.std()) / CLIP - 1.0) < 0.05


def test_non_dp_step_equals_mean_gradient():
    torch.manual_seed(0)
    discriminator = build_discriminator(TINY_MODEL, GRID, [2], dp=False)
    reference = copy.deepcopy(discriminator)
    trainer = _trainer(discriminator, dp=False)
    real, real_labels, fake, fake_labels = batch = _batch(3)
    trainer.discriminator_step(*batch)
    discriminator_loss_terms("hinge", reference(real, real_labels), reference(fake, fake_labels)).mean().backward()
    assert all(torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-5) for p, q in zip(trainer.discriminator.parameters(), reference.parameters()))


@pytest.mark.parametrize("engine", ENGINES)
def test_generator_step_leaves_discriminator_alone(engine):
    torch.manual_seed(0)
    discriminator = build_discriminator(TINY_MODEL, GRID, [2], dp=True)
    trainer = _trainer(discriminator, engine=engine)
    before = [p.detach().clone() for p in trainer.discriminator_module.parameters()]
    trainer.generator_step(3)
    unchanged = all(torch.equal(b, p) for b, p in zip(before, trainer.discriminator_module.parameters()))
    no_samples = all(getattr(p, "grad_sample", None) is None and p.grad is None for p in trainer.discriminator_module.parameters())
    assert unchanged and no_samples


def test_generator_step_changes_generator():
    torch.manual_seed(0)
    trainer = _trainer(build_discriminator(TINY_MODEL, GRID, [2], dp=True))
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.generator_step(3)
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.generator.parameters()))


def test_generator_step_keeps_hooks_enabled_after():
    torch.manual_seed(0)
    trainer = _trainer(build_discriminator(TINY_MODEL, GRID, [2], dp=True), engine="hooks")
    trainer.generator_step(2)
    trainer.discriminator_step(*_batch(2))
    assert all(p.grad is not None for p in trainer.discriminator_module.parameters())


def test_gradient_penalty_rejected_under_dp():
    with pytest.raises(PrivacyError, match="double backward"):
        check_loss("wgan-gp", dp=True)


def test_label_prior_sample_frequencies():
    prior = LabelPrior([torch.tensor([3.0, 1.0])])
    labels = prior.sample(4000, torch.Generator().manual_seed(0))
    assert abs(float((labels[:, 0] == 0).float().mean()) - 0.75) < 0.03
