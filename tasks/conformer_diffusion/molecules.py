"""Molecules and their graphs: the NCI set RDKit ships, filtered, and the graph the model sees.

The molecules are the first 5,000 entries of the NCI open database that RDKit ships
(``rdkit/Data/NCI/first_5K.smi``), kept when they parse, are one fragment, hold only
H, C, N, O and F, and have a heavy-atom count in the preset's range; duplicates (by
canonical SMILES) are dropped, file order is kept.

The graph of a molecule (with or without explicit hydrogens) is stored as NumPy arrays in a
:class:`GraphTable`: per-atom features and, per molecule, the atom pairs within three bonds
with their relation (bond order for 1-2 pairs, then 1-3 and 1-4). Giving the denoiser these
topological relations is what GeoDiff (Xu et al. 2022, ICLR) and ConfGF (Shi et al. 2021,
ICML) do by extending the bond graph with 2- and 3-hop edges.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ELEMENTS = ("H", "C", "N", "O", "F")
BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
#: edge relation ids: 0-3 bond types, 4 = 1-3 pair, 5 = 1-4 pair, 6 = spatial (radius) pair
N_RELATIONS = len(BOND_TYPES) + 3
RELATION_RADIUS = N_RELATIONS - 1
HYBRIDISATIONS = ("SP", "SP2", "SP3")
ATOM_FEATURES = len(ELEMENTS) + 3 + len(HYBRIDISATIONS) + 5 + 2  # element, charge, hybrid., H count, aromatic, ring


def nci_path() -> str:
    """The NCI SMILES file shipped with RDKit."""
    from rdkit import RDConfig

    return os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")


def nci_smiles(min_heavy: int, max_heavy: int) -> list[str]:
    """Canonical SMILES of the single-fragment H/C/N/O/F molecules with ``min_heavy..max_heavy``
    heavy atoms, in file order, without duplicates."""
    from rdkit import Chem, rdBase

    kept: list[str] = []
    seen: set[str] = set()
    with rdBase.BlockLogs(), open(nci_path()) as handle:
        for line in handle:
            fields = line.split()
            mol = Chem.MolFromSmiles(fields[0]) if fields else None
            if mol is None or len(Chem.GetMolFrags(mol)) != 1:
                continue
            if not min_heavy <= mol.GetNumHeavyAtoms() <= max_heavy:
                continue
            if any(atom.GetSymbol() not in ELEMENTS for atom in mol.GetAtoms()):
                continue
            canonical = Chem.MolToSmiles(mol)
            if canonical not in seen:
                seen.add(canonical)
                kept.append(canonical)
    return kept


def rdkit_mol(smiles: str, hydrogens: bool):  # -> rdkit.Chem.Mol
    """The molecule of ``smiles``; with ``hydrogens`` they are explicit and come after the
    heavy atoms (RDKit's ``AddHs`` appends them), so heavy atoms keep indices 0..h-1."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    return Chem.AddHs(mol) if hydrogens else mol


def _one_hot(value: object, choices: Sequence[object]) -> list[float]:
    return [1.0 if value == choice else 0.0 for choice in choices]


def atom_features(mol) -> np.ndarray:
    """Per-atom invariant features, shape (atoms, ATOM_FEATURES)."""
    rows = []
    for atom in mol.GetAtoms():
        rows.append(
            _one_hot(atom.GetSymbol(), ELEMENTS)
            + _one_hot(max(-1, min(1, atom.GetFormalCharge())), (-1, 0, 1))
            + _one_hot(str(atom.GetHybridization()), HYBRIDISATIONS)
            + _one_hot(min(atom.GetTotalNumHs(), 4), range(5))
            + [float(atom.GetIsAromatic()), float(atom.IsInRing())]
        )
    return np.asarray(rows, dtype=np.float32).reshape(-1, ATOM_FEATURES)


def topological_pairs(mol, max_hops: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Directed atom pairs within ``max_hops`` bonds, shape (E, 2), and their relation ids (E,)."""
    from rdkit import Chem

    hops = Chem.GetDistanceMatrix(mol)
    src, dst = np.nonzero((hops >= 1) & (hops <= max_hops))
    relation = np.empty(len(src), dtype=np.int64)
    for k, (i, j) in enumerate(zip(src, dst)):
        h = int(hops[i, j])
        if h == 1:
            relation[k] = BOND_TYPES.index(str(mol.GetBondBetweenAtoms(int(i), int(j)).GetBondType()))
        else:
            relation[k] = len(BOND_TYPES) + h - 2
    return np.stack([src, dst], axis=1).astype(np.int64), relation


@dataclass(frozen=True)
class GraphTable:
    """The graphs of a list of molecules, concatenated (CSR layout over molecules).

    ``atom_ptr[m]:atom_ptr[m+1]`` are molecule ``m``'s rows of ``atom_feat``;
    ``edge_ptr[m]:edge_ptr[m+1]`` its rows of ``edges`` (local atom indices) and ``relation``.
    """

    smiles: tuple[str, ...]
    hydrogens: bool
    atom_ptr: np.ndarray
    atom_feat: np.ndarray
    edge_ptr: np.ndarray
    edges: np.ndarray
    relation: np.ndarray

    @property
    def n_atoms(self) -> np.ndarray:
        return np.diff(self.atom_ptr)

    @property
    def max_atoms(self) -> int:
        return int(self.n_atoms.max())

    def __len__(self) -> int:
        return len(self.smiles)

    def bonds(self, m: int) -> np.ndarray:
        """Molecule ``m``'s bonds as (i, j) with i < j, shape (B, 2)."""
        lo, hi = self.edge_ptr[m], self.edge_ptr[m + 1]
        edges, relation = self.edges[lo:hi], self.relation[lo:hi]
        keep = (relation < len(BOND_TYPES)) & (edges[:, 0] < edges[:, 1])
        return edges[keep]


def graph_table(smiles: Sequence[str], hydrogens: bool) -> GraphTable:
    """Featurise ``smiles`` (see :class:`GraphTable`)."""
    feats, edge_list, relations = [], [], []
    for s in smiles:
        mol = rdkit_mol(s, hydrogens)
        feats.append(atom_features(mol))
        edges, relation = topological_pairs(mol)
        edge_list.append(edges)
        relations.append(relation)
    return GraphTable(
        smiles=tuple(smiles),
        hydrogens=hydrogens,
        atom_ptr=np.concatenate([[0], np.cumsum([len(f) for f in feats])]).astype(np.int64),
        atom_feat=np.concatenate(feats),
        edge_ptr=np.concatenate([[0], np.cumsum([len(e) for e in edge_list])]).astype(np.int64),
        edges=np.concatenate(edge_list),
        relation=np.concatenate(relations),
    )
