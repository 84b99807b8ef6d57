"""RDKit's physics for the strategies' hooks: geometric validity, MMFF94 energies and relaxation.

A sampled conformer (heavy atoms, or all atoms when the task models hydrogens) is turned into
an RDKit molecule with that geometry; when hydrogens are not modelled they are placed from the
heavy-atom geometry (``Chem.AddHs(addCoords=True)``). Then:

* validity (the verifier): every bond within a tolerance of its mean reference length, and the
  MMFF94 energy (Halgren 1996, J. Comput. Chem. 17:490) within a window above the molecule's
  lowest reference energy, computed the same way (hydrogens placed on the reference's heavy atoms);
* relaxation (the self-correction expert of Gillman et al. 2024): ``k`` MMFF94 minimisation
  steps from the sampled geometry;
* the reward: minus the MMFF94 energy above the reference minimum, per heavy atom, log-damped;
* features for a discriminator: how bond, 1-3 and 1-4 distances deviate from the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapselab.tasks.conformer_diffusion.data import ConformerData
from collapselab.tasks.conformer_diffusion.molecules import BOND_TYPES, rdkit_mol

UNRELAXED_ENERGY = 1e6  # kcal/mol: what a geometry MMFF cannot set up (or that explodes) counts as


@dataclass(frozen=True)
class Geometry:
    """Per molecule, the reference's mean distance of every bonded, 1-3 and 1-4 pair."""

    pairs: np.ndarray  # (k, 2) atom indices
    kind: np.ndarray  # (k,) 0 = bond, 1 = 1-3, 2 = 1-4
    mean: np.ndarray  # (k,) reference mean distance (A)


def reference_geometry(data: ConformerData, m: int) -> Geometry:
    table = data.table
    lo, hi = table.edge_ptr[m], table.edge_ptr[m + 1]
    edges, relation = table.edges[lo:hi], table.relation[lo:hi]
    keep = edges[:, 0] < edges[:, 1]
    edges, relation = edges[keep], relation[keep]
    kind = np.where(relation < len(BOND_TYPES), 0, relation - len(BOND_TYPES) + 1)
    ref = data.conformers(m)
    mean = np.linalg.norm(ref[:, edges[:, 0]] - ref[:, edges[:, 1]], axis=-1).mean(axis=0)
    return Geometry(edges, kind, mean)


def deviations(geometry: Geometry, pos: np.ndarray) -> np.ndarray:
    """|distance - reference mean| of every pair of ``geometry`` in one conformer ``pos`` (atoms, 3)."""
    found = np.linalg.norm(pos[geometry.pairs[:, 0]] - pos[geometry.pairs[:, 1]], axis=-1)
    return np.abs(found - geometry.mean)


def _molecule(smiles: str, pos: np.ndarray, hydrogens: bool):  # -> rdkit.Chem.Mol with all hydrogens
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    mol = rdkit_mol(smiles, hydrogens)
    conformer = Chem.Conformer(mol.GetNumAtoms())
    for i in range(mol.GetNumAtoms()):
        conformer.SetAtomPosition(i, Point3D(*map(float, pos[i])))
    mol.AddConformer(conformer, assignId=True)
    return mol if hydrogens else Chem.AddHs(mol, addCoords=True)


def _force_field(mol):  # -> rdkit ForceField or None
    from rdkit.Chem import rdForceFieldHelpers

    properties = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol)
    if properties is None:
        return None
    return rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, properties)


def mmff_energy(smiles: str, pos: np.ndarray, hydrogens: bool) -> float:
    """The MMFF94 energy (kcal/mol) of one conformer, hydrogens placed when not modelled."""
    from rdkit import rdBase

    with rdBase.BlockLogs():
        mol = _molecule(smiles, pos, hydrogens)  # kept alive: the force field points into its conformer
        field = _force_field(mol)
        energy = UNRELAXED_ENERGY if field is None else float(field.CalcEnergy())
    return energy if np.isfinite(energy) else UNRELAXED_ENERGY


def relax(smiles: str, pos: np.ndarray, hydrogens: bool, steps: int) -> np.ndarray:
    """``pos`` after ``steps`` MMFF94 minimisation steps (the modelled atoms' coordinates)."""
    from rdkit import rdBase

    atoms = len(pos)
    if steps <= 0:
        return pos
    with rdBase.BlockLogs():
        mol = _molecule(smiles, pos, hydrogens)
        field = _force_field(mol)
        if field is None:
            return pos
        field.Initialize()
        field.Minimize(maxIts=int(steps))
        relaxed = np.asarray(field.Positions(), dtype=np.float64).reshape(-1, 3)[:atoms]
    return relaxed if np.all(np.isfinite(relaxed)) else pos
