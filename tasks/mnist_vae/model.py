"""The VAE: MLP encoder and Bernoulli decoder, trained on the weighted negative ELBO.

Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (ICLR): a Gaussian posterior
q(z|x) = N(mu(x), diag sigma^2(x)) with the reparameterisation trick, prior N(0, I), and a
factorised Bernoulli likelihood p(x|z) over the 784 binary pixels, so the negative ELBO is an
upper bound on -log p(x) in nats. The importance-weighted bound is Burda, Grosse &
Salakhutdinov 2016, "Importance Weighted Autoencoders" (ICLR).
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from collapselab.toolkit.training import warmup_cosine

PIXELS = 28 * 28


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (inp, out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(inp, out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(pl.LightningModule):
    """784 -> hidden x layers -> (mu, log sigma^2) of ``latent`` dims; decoder mirrors it to pixel logits."""

    def __init__(self, hidden: int, layers: int, latent: int, lr: float, total_steps: int = 1) -> None:
        super().__init__()
        self.latent = latent
        self.lr = lr
        self.total_steps = total_steps
        widths = [hidden] * layers
        self.encoder = _mlp([PIXELS, *widths, 2 * latent])
        self.decoder = _mlp([latent, *widths, PIXELS])

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x) for flattened images ``x`` in {0, 1}."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def terms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image reconstruction NLL -log p(x|z), z ~ q(z|x) (one draw), and KL(q(z|x) || p(z)), in nats."""
        mu, logvar = self.posterior(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(-1)
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(-1)
        return recon, kl

    def importance_nll(self, x: torch.Tensor, samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-image -log of the K-sample importance-weighted estimate of p(x) (Burda et al. 2016)."""
        mu, logvar = self.posterior(x)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn((samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + std * eps
        log_px = -F.binary_cross_entropy_with_logits(
            self.decoder(z), x.expand(samples, *x.shape), reduction="none"
        ).sum(-1)
        log_pz = -0.5 * (z.square() + math.log(2 * math.pi)).sum(-1)
        log_qz = -0.5 * (eps.square() + logvar + math.log(2 * math.pi)).sum(-1)
        return -(torch.logsumexp(log_px + log_pz - log_qz, dim=0) - math.log(samples))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities of p(x|z)."""
        return torch.sigmoid(self.decoder(z))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, weight = batch
        recon, kl = self.terms(x)
        return (weight * (recon + kl)).mean()

    def configure_optimizers(self) -> Any:
        """Adam with a short warm-up and cosine decay to a tenth of ``lr`` over the fit's budget."""
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)
        return warmup_cosine(optimizer, self.total_steps, warmup=min(100, self.total_steps // 20), floor=0.1)
