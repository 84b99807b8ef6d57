"""The conformer task's measures of the collapse profile (:mod:`collapselab.scoring.profile`).

- ``variance_ratio``: the spread of each test molecule's generated ensemble, the mean pairwise heavy-atom
  RMSD between its conformers, over the same spread of its reference ensemble; summed over molecules
  (ratio of sums) so that rigid molecules with a near-zero spread do not dominate.
- ``mode_coverage``: COV-R (the share of reference conformers that some generated conformer matches
  within the threshold, :mod:`rmsd`): the modes of the real ensembles that the samples reach.
- ``hallucination``: the share of generated conformers that are geometrically invalid under RDKit's
  distance bounds (``rdDistGeom.GetMoleculeBoundsMatrix``): a bonded pair outside [0.75, 1.25] times its
  bounds, or any pair closer than 0.75 times its lower bound (the bond-length and clash tests of
  PoseBusters, Buttenschoen, Morris & Deane 2024, Chem. Sci. 15:3130).
- tails (``tail_molecules``): the test molecules whose rarest ring system occurs least often among the
  training molecules (the lowest quarter of the test molecules by that count; an acyclic molecule counts
  as the ring system "none"), fixed by the split before any generation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from collapselab.tasks.conformer_diffusion import rmsd
from collapselab.tasks.conformer_diffusion.data import ConformerData

BOND_TOLERANCE = 0.25
CLASH_FACTOR = 0.75
TAIL_SHARE = 0.25


def heavy_automorphisms(smiles: str) -> np.ndarray:
    from rdkit import Chem

    return rmsd.automorphisms(Chem.MolFromSmiles(smiles))


def spread(conformers: np.ndarray, perms: np.ndarray) -> float:
    """Mean pairwise RMSD between the conformers (k, atoms, 3) of one molecule; 0 for fewer than two."""
    if len(conformers) < 2:
        return 0.0
    matrix = rmsd.pairwise_rmsd(conformers, conformers, perms)
    return float(matrix[~np.eye(len(conformers), dtype=bool)].mean())


def variance_ratio(data: ConformerData, mols: Sequence[int] | np.ndarray, generated: Sequence[np.ndarray]) -> float:
    """Sum over molecules of the generated ensembles' spread over the sum of the references'."""
    ours = theirs = 0.0
    for m, gen in zip(mols, generated):
        h = data.heavy_atoms(int(m))
        perm = heavy_automorphisms(data.table.smiles[int(m)])
        ours += spread(gen[:, :h], perm)
        theirs += spread(data.conformers(int(m))[:, :h], perm)
    return ours / theirs if theirs > 0 else 1.0


def _bounds(smiles: str, hydrogens: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, bonded) matrices of RDKit's distance bounds for the molecule's atoms."""
    from rdkit.Chem import rdDistGeom

    from collapselab.tasks.conformer_diffusion.molecules import rdkit_mol

    mol = rdkit_mol(smiles, hydrogens)
    bounds = rdDistGeom.GetMoleculeBoundsMatrix(mol)
    upper, lower = np.triu(bounds), np.tril(bounds).T
    bonded = np.zeros_like(bounds, dtype=bool)
    for bond in mol.GetBonds():
        i, j = sorted((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
        bonded[i, j] = True
    return lower, upper, bonded


def invalid(conformers: np.ndarray, smiles: str, hydrogens: bool) -> np.ndarray:
    """Per conformer (k, atoms, 3), whether it fails the bond-length or clash test (module docstring)."""
    lower, upper, bonded = _bounds(smiles, hydrogens)
    n = lower.shape[0]
    i, j = np.triu_indices(n, 1)
    distance = np.linalg.norm(conformers[:, i, :] - conformers[:, j, :], axis=-1)
    bond = bonded[i, j]
    too_long = bond & (distance > (1.0 + BOND_TOLERANCE) * upper[i, j])
    too_short = np.where(bond, distance < (1.0 - BOND_TOLERANCE) * lower[i, j], distance < CLASH_FACTOR * lower[i, j])
    return (too_long | too_short).any(axis=1)


def invalid_share(data: ConformerData, mols: Sequence[int] | np.ndarray, generated: Sequence[np.ndarray],
                  hydrogens: bool) -> float:
    flags = [invalid(gen, data.table.smiles[int(m)], hydrogens) for m, gen in zip(mols, generated)]
    return float(np.concatenate(flags).mean())


def ring_systems(smiles: str) -> list[str]:
    """Canonical SMILES of each ring system (rings joined by shared atoms) of the molecule; ``["none"]`` if acyclic."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    systems: list[set[int]] = []
    for ring in mol.GetRingInfo().AtomRings():
        merged = set(ring)
        for other in [s for s in systems if s & merged]:
            merged |= other
            systems.remove(other)
        systems.append(merged)
    if not systems:
        return ["none"]
    return sorted(Chem.MolFragmentToSmiles(mol, atomsToUse=sorted(s), canonical=True) for s in systems)


def tail_molecules(data: ConformerData, held_out: np.ndarray | None = None) -> np.ndarray:
    """The held-out molecules (default: the test molecules) of the rarest stratum: the lowest
    ``TAIL_SHARE`` of them (at least one, ties included unless the ties would leave no common
    stratum) by how many training molecules share their rarest ring system."""
    smiles = data.table.smiles
    counts = Counter(system for m in data.split.train for system in set(ring_systems(smiles[int(m)])))
    mols = np.asarray(data.split.test if held_out is None else held_out)
    rarity = np.array([min(counts[s] for s in ring_systems(smiles[int(m)])) for m in mols])
    order = np.argsort(rarity, kind="stable")
    size = min(max(1, int(TAIL_SHARE * len(mols))), max(1, len(mols) - 1))
    chosen = mols[rarity <= rarity[order[size - 1]]]
    return chosen if len(chosen) < len(mols) else mols[order[:size]]


def sample_measures(data: ConformerData, mols: Sequence[int] | np.ndarray, generated: Sequence[np.ndarray],
                    ensemble: dict[str, float], hydrogens: bool) -> dict[str, float]:
    """``variance_ratio``, ``mode_coverage`` (COV-R of ``ensemble``, the :func:`evaluation.ensemble_metrics`)
    and ``hallucination`` of the generated ensembles."""
    return {"variance_ratio": variance_ratio(data, mols, generated), "mode_coverage": ensemble["cov_r"],
            "hallucination": invalid_share(data, mols, generated, hydrogens)}
