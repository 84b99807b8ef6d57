"""Batches of molecular graphs as flat tensors (all atoms of a batch concatenated).

A batch is a list of molecule ids with padded coordinates (items, max_atoms, 3); the graph
structure comes from a :class:`~tasks.conformer_diffusion.molecules.GraphTable` held as
tensors. Every pair of atoms of a molecule is a candidate edge: pairs within three bonds
always take part (relation: bond order, 1-3 or 1-4); farther pairs take part only when a
radius graph is enabled, weighted by a smooth cutoff of their current distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from collapselab.tasks.conformer_diffusion.molecules import RELATION_RADIUS, GraphTable


@dataclass
class Batch:
    """Flat graph tensors of a batch of conformers."""

    n_graphs: int
    graph: torch.Tensor  # (nodes,) graph index of each node
    node_mask: torch.Tensor  # (items, max_atoms) which padded slots are atoms
    atom_feat: torch.Tensor  # (nodes, F)
    src: torch.Tensor  # (edges,)
    dst: torch.Tensor  # (edges,)
    relation: torch.Tensor  # (edges,)

    def flatten(self, padded: torch.Tensor) -> torch.Tensor:
        """Padded per-item coordinates (items, max_atoms, 3) -> flat (nodes, 3)."""
        return padded[self.node_mask]

    def unflatten(self, flat: torch.Tensor) -> torch.Tensor:
        """Flat (nodes, 3) -> padded (items, max_atoms, 3), zeros in the padding."""
        out = flat.new_zeros(*self.node_mask.shape, flat.shape[1])
        out[self.node_mask] = flat
        return out


class GraphIndex(torch.nn.Module):
    """The graph table as (non-persistent) buffers, and :meth:`batch` to assemble batches."""

    n_atoms: torch.Tensor
    atom_ptr: torch.Tensor
    atom_feat: torch.Tensor
    edge_pad: torch.Tensor
    rel_pad: torch.Tensor

    def __init__(self, table: GraphTable) -> None:
        super().__init__()
        n_atoms = table.n_atoms
        pairs = []  # every ordered pair of atoms of each molecule, topological ones first
        for m in range(len(table)):
            lo, hi = table.edge_ptr[m], table.edge_ptr[m + 1]
            near = table.edges[lo:hi]
            near_rel = table.relation[lo:hi]
            n = int(n_atoms[m])
            full = np.ones((n, n), dtype=bool)
            np.fill_diagonal(full, False)
            full[near[:, 0], near[:, 1]] = False
            far = np.argwhere(full)
            pairs.append(
                (
                    np.concatenate([near, far]).astype(np.int64),
                    np.concatenate([near_rel, np.full(len(far), RELATION_RADIUS)]).astype(np.int64),
                )
            )
        max_pairs = max(len(p[0]) for p in pairs)
        edge_pad = np.zeros((len(table), max_pairs, 2), dtype=np.int64)
        rel_pad = np.full((len(table), max_pairs), -1, dtype=np.int64)
        for m, (edges, rel) in enumerate(pairs):
            edge_pad[m, : len(edges)] = edges
            rel_pad[m, : len(rel)] = rel
        self.max_atoms = table.max_atoms
        self.register_buffer("n_atoms", torch.as_tensor(n_atoms), persistent=False)
        self.register_buffer("atom_ptr", torch.as_tensor(table.atom_ptr[:-1]), persistent=False)
        self.register_buffer("atom_feat", torch.as_tensor(table.atom_feat), persistent=False)
        self.register_buffer("edge_pad", torch.as_tensor(edge_pad), persistent=False)
        self.register_buffer("rel_pad", torch.as_tensor(rel_pad), persistent=False)

    def batch(self, mol: torch.Tensor, radius: float) -> Batch:
        """The graphs of molecules ``mol`` (items,). Far pairs are included only when ``radius``
        > 0; the denoiser then weighs them with a smooth cutoff of their current distance."""
        n = self.n_atoms[mol]
        slots = torch.arange(self.max_atoms, device=mol.device)
        node_mask = slots[None] < n[:, None]
        graph = torch.repeat_interleave(torch.arange(len(mol), device=mol.device), n)
        atom_index = (self.atom_ptr[mol][:, None] + slots[None])[node_mask]
        offset = torch.cumsum(n, 0) - n
        rel = self.rel_pad[mol]
        keep = rel >= 0 if radius > 0 else (rel >= 0) & (rel != RELATION_RADIUS)
        edges = self.edge_pad[mol] + offset[:, None, None]
        return Batch(
            n_graphs=len(mol),
            graph=graph,
            node_mask=node_mask,
            atom_feat=self.atom_feat[atom_index],
            src=edges[..., 0][keep],
            dst=edges[..., 1][keep],
            relation=rel[keep],
        )
