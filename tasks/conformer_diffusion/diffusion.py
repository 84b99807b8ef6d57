"""Variance-preserving diffusion over zero-centre-of-mass atom coordinates.

The forward process x_t = alpha_t x_0 + sigma_t eps (Ho et al. 2020, NeurIPS) with the
noise restricted to the zero-centre-of-mass subspace, so that the model is translation
invariant (Xu et al. 2022, GeoDiff, ICLR; Hoogeboom et al. 2022, "Equivariant Diffusion for
Molecule Generation in 3D", ICML). The schedule is the truncated cosine schedule written in
log-SNR form, lambda(t) = -2 log tan(a t + b) (Nichol & Dhariwal 2021; Kingma et al. 2021,
"Variational Diffusion Models"), with alpha_t^2 = sigmoid(lambda), sigma_t^2 = sigmoid(-lambda).
The training loss is the epsilon-prediction MSE of Ho et al. 2020 with t ~ U(0, 1); sampling
is ancestral: x_s ~ q(x_s | x_t, x_0 = x0_hat) on a uniform grid of t.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

LAMBDA_MAX = 8.0  # sigma ~ 0.018 A at t = 0
LAMBDA_MIN = -8.0  # alpha ~ 0.018 at t = 1

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t per node) -> eps_hat


def log_snr(t: torch.Tensor) -> torch.Tensor:
    """lambda(t) of the truncated cosine schedule (decreasing from LAMBDA_MAX to LAMBDA_MIN)."""
    b = math.atan(math.exp(-LAMBDA_MAX / 2))
    a = math.atan(math.exp(-LAMBDA_MIN / 2)) - b
    return -2.0 * torch.log(torch.tan(a * t + b))


def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lam = log_snr(t)
    return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()


def center(x: torch.Tensor, graph: torch.Tensor, n_graphs: int) -> torch.Tensor:
    """``x`` (nodes, 3) with each graph's mean removed (``graph`` = graph index per node)."""
    total = torch.zeros(n_graphs, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, graph, x)
    count = torch.zeros(n_graphs, dtype=x.dtype, device=x.device).index_add_(0, graph, torch.ones_like(x[:, 0]))
    return x - (total / count[:, None])[graph]


def graph_mean(values: torch.Tensor, graph: torch.Tensor, n_graphs: int) -> torch.Tensor:
    """Per-graph mean of per-node ``values`` (nodes,)."""
    total = torch.zeros(n_graphs, dtype=values.dtype, device=values.device).index_add_(0, graph, values)
    count = torch.zeros(n_graphs, dtype=values.dtype, device=values.device).index_add_(0, graph, torch.ones_like(values))
    return total / count


def noise_like(x: torch.Tensor, graph: torch.Tensor, n_graphs: int, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise projected onto the zero-centre-of-mass subspace."""
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    return center(eps, graph, n_graphs)


def denoising_loss(
    denoise: Denoise,
    x0: torch.Tensor,
    t: torch.Tensor,
    eps: torch.Tensor,
    graph: torch.Tensor,
    n_graphs: int,
) -> torch.Tensor:
    """Per-graph epsilon MSE (mean over atoms and coordinates) at per-graph times ``t``.

    ``x0`` must be centred and ``eps`` zero-centre-of-mass noise, both (nodes, 3).
    """
    alpha, sigma = alpha_sigma(t[graph])
    xt = alpha[:, None] * x0 + sigma[:, None] * eps
    err = (denoise(xt, t[graph]) - eps).pow(2).mean(dim=1)
    return graph_mean(err, graph, n_graphs)


@torch.no_grad()
def sample(
    denoise: Denoise,
    graph: torch.Tensor,
    n_graphs: int,
    steps: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    clip: float = 0.0,
) -> torch.Tensor:
    """Ancestral sampling from t = 1 to 0 in ``steps`` uniform steps; returns centred x_0 (nodes, 3).

    With ``clip`` > 0 each step's x0 estimate is clamped to [-clip, clip] A per coordinate
    (the x0 clipping of Ho et al. 2020's image sampler), which keeps an inaccurate model's
    early, high-noise estimates from throwing atoms far away."""
    x = noise_like(torch.zeros(len(graph), 3, dtype=dtype, device=device), graph, n_graphs, generator)
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=dtype)
    for k in range(steps):
        t, s = grid[k], grid[k + 1]
        alpha_t, sigma_t = alpha_sigma(t)
        eps_hat = denoise(x, torch.full((len(graph),), float(t), dtype=dtype, device=device))
        x0_hat = (x - sigma_t * eps_hat) / alpha_t
        if clip > 0:
            x0_hat = x0_hat.clamp(-clip, clip)
        if k == steps - 1:
            return center(x0_hat, graph, n_graphs)
        alpha_s, sigma_s = alpha_sigma(s)
        alpha_ts = alpha_t / alpha_s
        var_ts = sigma_t**2 - alpha_ts**2 * sigma_s**2
        mean = (alpha_ts * sigma_s**2 / sigma_t**2) * x + (alpha_s * var_ts / sigma_t**2) * x0_hat
        std = (var_ts * sigma_s**2 / sigma_t**2).sqrt()
        x = mean + std * noise_like(x, graph, n_graphs, generator)
    return center(x, graph, n_graphs)
