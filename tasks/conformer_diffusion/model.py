"""The E(3)-equivariant denoiser (e3nn) and its Lightning module.

The denoiser is a tensor-field network in the NequIP form (Thomas et al. 2018, arXiv
1802.08219; Batzner et al. 2022, Nat. Commun. 13:2453): node features are irreps
``Cx0e + Vx1o``; a layer sends along every edge the tensor product of the source's features
with the spherical harmonics (l <= 1) of the edge direction, weighted per edge by an MLP of
invariant edge features (radial basis of the current distance, the edge's topological
relation, both endpoints' scalar features and the noise level), sums the messages, mixes them
linearly with a self-connection and applies a gated nonlinearity (Weiler et al. 2018). The last
layer emits one ``1o`` vector per atom: the predicted noise, made zero-mean per molecule. The
output rotates (and inverts) with the input and ignores translations (tested numerically).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from e3nn import nn as e3nn_nn
from e3nn import o3

from collapselab.tasks.conformer_diffusion import diffusion
from collapselab.tasks.conformer_diffusion.graphs import Batch, GraphIndex
from collapselab.tasks.conformer_diffusion.molecules import ATOM_FEATURES, N_RELATIONS, RELATION_RADIUS, GraphTable
from collapselab.toolkit.training import warmup_cosine


@dataclass(frozen=True)
class ModelSpec:
    """Size of the denoiser."""

    scalars: int = 32
    vectors: int = 8
    layers: int = 3
    hidden: int = 64
    rbf: int = 16
    rbf_max: float = 8.0
    radius: float = 0.0
    time_features: int = 16


class FourierTime(torch.nn.Module):
    """sin/cos features of the diffusion time t in [0, 1] at fixed log-spaced frequencies."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.freq: torch.Tensor
        self.register_buffer("freq", torch.logspace(0, 3, features // 2, base=2.0) * math.pi, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t[:, None] * self.freq
        return torch.cat([angle.sin(), angle.cos()], dim=1)


def _mlp(sizes: list[int]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if k < len(sizes) - 2:
            layers.append(torch.nn.SiLU())
    return torch.nn.Sequential(*layers)


def _uvu(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps) -> tuple[o3.Irreps, list[tuple]]:
    """Channel-wise ('uvu') tensor-product paths whose output type occurs in ``irreps_out``."""
    wanted = {ir for _, ir in irreps_out}
    mid: list[tuple[int, o3.Irrep]] = []
    instructions: list[tuple[int, int, int, str, bool]] = []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir in ir_in * ir_sh:
                if ir in wanted:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir))
    irreps_mid = o3.Irreps(mid)
    irreps_sorted, perm, _ = irreps_mid.sort()
    return irreps_sorted, [(i, j, perm[k], mode, train) for i, j, k, mode, train in instructions]


class Interaction(torch.nn.Module):
    """One equivariant message-passing layer (gated, or linear for the output layer)."""

    def __init__(
        self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, edge_dim: int, time_dim: int, hidden: int, gated: bool
    ) -> None:
        super().__init__()
        self.n_scalars = irreps_in.count("0e")
        irreps_sh = o3.Irreps("0e + 1o")
        irreps_mid, instructions = _uvu(irreps_in, irreps_sh, irreps_out)
        self.pre = o3.Linear(irreps_in, irreps_in)
        self.tp = o3.TensorProduct(
            irreps_in, irreps_sh, irreps_mid, instructions, internal_weights=False, shared_weights=False
        )
        # the per-edge weight MLP's first layer, split into an edge part and per-node parts for
        # the two endpoints (node projections are computed once per node, then gathered)
        self.edge_in = torch.nn.Linear(edge_dim, hidden)
        self.src_in = torch.nn.Linear(self.n_scalars, hidden, bias=False)
        self.dst_in = torch.nn.Linear(self.n_scalars + time_dim, hidden, bias=False)
        self.weights = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(hidden, self.tp.weight_numel))
        if gated:
            scalars = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l == 0])
            gated_irreps = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l > 0])
            self.gate: torch.nn.Module | None = e3nn_nn.Gate(
                scalars, [torch.nn.functional.silu], f"{gated_irreps.num_irreps}x0e", [torch.sigmoid], gated_irreps
            )
            target = self.gate.irreps_in
        else:
            self.gate = None
            target = irreps_out
        self.post = o3.Linear(irreps_mid, target)
        self.skip = o3.Linear(irreps_in, target)
        self.residual = gated and irreps_in == irreps_out

    def forward(
        self, h: torch.Tensor, temb: torch.Tensor, sh: torch.Tensor, edge_feat: torch.Tensor, src: torch.Tensor,
        dst: torch.Tensor, envelope: torch.Tensor, norm: float,
    ) -> torch.Tensor:
        s = h[:, : self.n_scalars]
        first = self.edge_in(edge_feat) + self.src_in(s)[src] + self.dst_in(torch.cat([s, temb], dim=1))[dst]
        weight = self.weights(first) * envelope[:, None]
        msg = self.tp(self.pre(h)[src], sh, weight)
        agg = torch.zeros(len(h), msg.shape[1], dtype=msg.dtype, device=msg.device).index_add_(0, dst, msg)
        out = self.post(agg / norm) + self.skip(h)
        if self.gate is None:
            return out
        out = self.gate(out)
        return out + h if self.residual else out


class Denoiser(torch.nn.Module):
    """eps_hat(x_t, t | graph): E(3)-equivariant noise prediction per atom."""

    def __init__(self, spec: ModelSpec, mean_degree: float) -> None:
        super().__init__()
        self.spec = spec
        self.norm = math.sqrt(max(mean_degree, 1.0))
        self.time = FourierTime(spec.time_features)
        self.register_buffer("centers", torch.linspace(0.0, spec.rbf_max, spec.rbf), persistent=False)
        self.width = spec.rbf_max / (spec.rbf - 1)
        self.embed = _mlp([ATOM_FEATURES + spec.time_features, spec.hidden, spec.scalars])
        edge_dim, time_dim = spec.rbf + N_RELATIONS, spec.time_features
        hidden = o3.Irreps(f"{spec.scalars}x0e + {spec.vectors}x1o")
        irreps = [o3.Irreps(f"{spec.scalars}x0e")] + [hidden] * spec.layers
        self.layers = torch.nn.ModuleList(
            Interaction(a, b, edge_dim, time_dim, spec.hidden, gated=True) for a, b in zip(irreps[:-1], irreps[1:])
        )
        self.out = Interaction(hidden, o3.Irreps("1x1o"), edge_dim, time_dim, spec.hidden, gated=False)

    def forward(self, batch: Batch, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted zero-mean noise (nodes, 3) for centred coordinates ``x`` at per-node times ``t``."""
        src, dst, relation = batch.src, batch.dst, batch.relation
        vec = x[dst] - x[src]
        dist = vec.norm(dim=1)
        if self.spec.radius > 0:  # far pairs take part only within the radius
            keep = (relation != RELATION_RADIUS) | (dist < self.spec.radius)
            src, dst, relation, vec, dist = src[keep], dst[keep], relation[keep], vec[keep], dist[keep]
        sh = o3.spherical_harmonics("0e + 1o", vec, normalize=True, normalization="component")
        temb = self.time(t)
        rbf = torch.exp(-(((dist[:, None] - self.centers) / self.width) ** 2))
        rel = torch.nn.functional.one_hot(relation, N_RELATIONS).to(x.dtype)
        edge_feat = torch.cat([rbf, rel], dim=1)
        envelope = torch.ones_like(dist)
        if self.spec.radius > 0:  # smooth cutoff, so that an atom crossing the radius changes nothing abruptly
            cut = 0.5 * (torch.cos(math.pi * dist / self.spec.radius) + 1.0)
            envelope = torch.where(relation == RELATION_RADIUS, cut, envelope)
        h = self.embed(torch.cat([batch.atom_feat, temb], dim=1))
        for layer in self.layers:
            h = layer(h, temb, sh, edge_feat, src, dst, envelope, self.norm)
        eps = self.out(h, temb, sh, edge_feat, src, dst, envelope, self.norm)
        return diffusion.center(eps, batch.graph, batch.n_graphs)


class ConformerDiffusion(pl.LightningModule):
    """The denoiser plus its graph table, trained with the weighted epsilon loss (AdamW, linear
    warm-up then cosine decay of the learning rate over ``max_steps``). With ``ema_decay`` > 0 the
    fitted weights are an exponential moving average of the training iterates, updated after
    every optimiser step (Polyak & Juditsky 1992; the diffusion practice of Ho et al. 2020, App. B,
    and Song & Ermon 2020, Sec. 3.5), through Lightning's ``WeightAveraging`` callback."""

    def __init__(self, table: GraphTable, spec: ModelSpec, lr: float = 2e-3, max_steps: int = 1000,
                 ema_decay: float = 0.0) -> None:
        super().__init__()
        self.graphs = GraphIndex(table)
        topological = table.relation.size / max(1, table.atom_feat.shape[0])
        self.denoiser = Denoiser(spec, mean_degree=topological)
        self.lr, self.max_steps, self.ema_decay = lr, max_steps, ema_decay
        self.warmup = max(1, min(50, max_steps // 10))

    def configure_callbacks(self) -> list[pl.Callback]:
        """The moving average of the weights when ``ema_decay`` > 0 (copied into the module when training ends)."""
        if self.ema_decay <= 0:
            return []
        from pytorch_lightning.callbacks import WeightAveraging
        from torch.optim.swa_utils import get_ema_multi_avg_fn

        # parameters only: the buffers are the graph table's integer indices (no normalisation layers)
        return [WeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay), use_buffers=False)]

    def batch(self, mol: torch.Tensor) -> Batch:
        return self.graphs.batch(mol, self.denoiser.spec.radius)

    def eps_fn(self, batch: Batch) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return lambda x, t: self.denoiser(batch, x, t)

    def item_losses(self, mol: torch.Tensor, pos: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Per-item epsilon MSE at per-item times ``t`` with padded noise ``eps`` (items, atoms, 3)."""
        batch = self.batch(mol)
        x0 = diffusion.center(batch.flatten(pos), batch.graph, batch.n_graphs)
        noise = diffusion.center(batch.flatten(eps), batch.graph, batch.n_graphs)
        return diffusion.denoising_loss(self.eps_fn(batch), x0, t, noise, batch.graph, batch.n_graphs)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        mol, pos, weight = batch
        t = torch.rand(len(mol), dtype=pos.dtype, device=pos.device)
        eps = torch.randn_like(pos)
        return (weight * self.item_losses(mol, pos, t, eps)).mean()

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.0)

        return warmup_cosine(optimizer, self.max_steps, self.warmup, floor=0.05)
