"""Running a trained model: fixed-noise losses, sampling, and ensemble metrics.

The fixed-noise loss is the training objective of :mod:`~tasks.conformer_diffusion.diffusion`
estimated with a fixed grid of times t_k = (k + 1/2) / K and noise drawn from a fixed seed,
so the same model always gets the same number. The ensemble metrics compare generated and
reference conformers of each molecule: COV/MAT (see :mod:`~tasks.conformer_diffusion.rmsd`) on
heavy atoms, and the mean absolute error of bond lengths against the mean length of the same
bond over the molecule's MMFF-optimised reference conformers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from collapselab.tasks.conformer_diffusion import diffusion, rmsd
from collapselab.tasks.conformer_diffusion.collapse_measures import heavy_automorphisms
from collapselab.tasks.conformer_diffusion.data import ConformerData
from collapselab.tasks.conformer_diffusion.model import ConformerDiffusion


@torch.no_grad()
def item_losses(
    model: ConformerDiffusion, mol: np.ndarray, pos: np.ndarray, levels: int, seed: int, batch_size: int, device: str
) -> np.ndarray:
    """Each item's epsilon MSE averaged over ``levels`` fixed times, with noise from ``seed``."""
    model.eval().to(device)
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn((levels, *pos.shape), generator=generator)
    mol_t, pos_t = torch.tensor(mol), torch.tensor(pos, dtype=torch.float32)
    total = torch.zeros(len(mol), dtype=torch.float64)
    for k in range(levels):
        t = torch.full((len(mol),), (k + 0.5) / levels)
        for lo in range(0, len(mol), batch_size):
            hi = lo + batch_size
            loss = model.item_losses(mol_t[lo:hi].to(device), pos_t[lo:hi].to(device), t[lo:hi].to(device), eps[k, lo:hi].to(device))
            total[lo:hi] += loss.double().cpu()
    return (total / levels).numpy()


@torch.no_grad()
def sample_positions(
    model: ConformerDiffusion, mol: np.ndarray, steps: int, seed: int, batch_size: int, device: str, clip: float = 0.0
) -> np.ndarray:
    """One sampled conformer per entry of ``mol``, padded: shape (len(mol), max_atoms, 3)."""
    model.eval().to(device)
    generator = torch.Generator().manual_seed(seed)
    out = np.zeros((len(mol), model.graphs.max_atoms, 3), dtype=np.float32)
    for lo in range(0, len(mol), batch_size):
        batch = model.batch(torch.tensor(mol[lo : lo + batch_size]).to(device))
        x = diffusion.sample(model.eps_fn(batch), batch.graph, batch.n_graphs, steps, generator, device=device, clip=clip)
        out[lo : lo + batch_size] = batch.unflatten(x).cpu().numpy()
    return out


def bond_mae(data: ConformerData, m: int, generated: np.ndarray) -> float:
    """Mean |generated bond length - mean reference bond length| over bonds and conformers (A)."""
    bonds = data.table.bonds(m)
    ref = data.conformers(m)
    ref_len = np.linalg.norm(ref[:, bonds[:, 0]] - ref[:, bonds[:, 1]], axis=-1).mean(axis=0)
    gen_len = np.linalg.norm(generated[:, bonds[:, 0]] - generated[:, bonds[:, 1]], axis=-1)
    return float(np.abs(gen_len - ref_len).mean())


def ensemble_metrics(
    data: ConformerData, mols: Sequence[int] | np.ndarray, generated: Sequence[np.ndarray], threshold: float
) -> dict[str, float]:
    """COV-R/MAT-R/COV-P/MAT-P (heavy atoms, ``threshold`` in A) and bond-length MAE, averaged
    over molecules; ``generated[i]`` holds molecule ``mols[i]``'s conformers (k, atoms, 3)."""
    items, errors = [], []
    for m, gen in zip(mols, generated):
        h = data.heavy_atoms(int(m))
        perms = heavy_automorphisms(data.table.smiles[int(m)])
        matrix = rmsd.pairwise_rmsd(gen[:, :h], data.conformers(int(m))[:, :h], perms)
        items.append(rmsd.coverage(matrix, threshold))
        errors.append(bond_mae(data, int(m), gen))
    return {**rmsd.mean_coverage(items), "bond_mae": float(np.mean(errors))}
