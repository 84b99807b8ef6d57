"""Symmetry-aware heavy-atom RMSD and the COV/MAT conformer-ensemble metrics.

RMSD after optimal superposition uses the closed form of Kabsch (1976, Acta Cryst. A32:922):
for centred coordinates A, B (n atoms) with H = A^T B and singular values s1 >= s2 >= s3,
n RMSD^2 = |A|^2 + |B|^2 - 2 (s1 + s2 + sign(det H) s3) (proper rotations only). Symmetry is
handled as RDKit's ``GetBestRMS`` does: the minimum over the graph automorphisms of the
molecule (its substructure matches onto itself, with conjugated terminal groups symmetrised),
here vectorised over all conformer pairs.

COV and MAT follow Xu et al. 2021 (ConfGF, ICML) and Xu et al. 2022 (GeoDiff, ICLR):
COV-R is the fraction of reference conformers within ``threshold`` of some generated one,
MAT-R the mean over reference conformers of the distance to the closest generated one;
COV-P and MAT-P swap the roles of the two sets.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

# conjugated terminal O/N pairs such as C(=O)O, C(=O)[O-] and [N+](=O)[O-] (RDKit's
# MolAlign::details::symmetrizeTerminalAtoms, used by GetBestRMS by default)
_TERMINAL = "[O,N;D1;$([O,N;D1]-[*]=[O,N;D1]),$([O,N;D1]=[*]-[O,N;D1])]~[*]"


@functools.cache
def _terminal_pattern():  # -> rdkit.Chem.Mol
    from rdkit import Chem

    return Chem.MolFromSmarts(_TERMINAL)


def automorphisms(mol, max_matches: int = 1000) -> np.ndarray:
    """The graph automorphisms of ``mol`` (heavy atoms) as index arrays, shape (P, atoms).

    As in RDKit's ``GetBestRMS`` (defaults), the terminal atoms of conjugated groups count as
    equivalent: their charges are ignored and their bonds match single or double."""
    from rdkit import Chem

    query = Chem.RWMol(mol)
    for terminal, neighbour in mol.GetSubstructMatches(_terminal_pattern()):
        query.GetAtomWithIdx(terminal).SetFormalCharge(0)
        bond = mol.GetBondBetweenAtoms(terminal, neighbour).GetIdx()
        query.ReplaceBond(bond, Chem.BondFromSmarts("-,="), preserveProps=False)
    matches = mol.GetSubstructMatches(query, uniquify=False, useChirality=False, maxMatches=max_matches)
    return np.asarray(matches, dtype=np.int64).reshape(-1, mol.GetNumAtoms())


def kabsch_rmsd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMSD of ``a`` and ``b`` (shape (..., n, 3), broadcast) after optimal rotation and translation."""
    a = a - a.mean(axis=-2, keepdims=True)
    b = b - b.mean(axis=-2, keepdims=True)
    h = np.swapaxes(a, -1, -2) @ b
    s = np.linalg.svd(h, compute_uv=False)
    sign = np.sign(np.linalg.det(h))
    trace = s[..., 0] + s[..., 1] + np.where(sign < 0, -1.0, 1.0) * s[..., 2]
    sq = (np.sum(a * a, axis=(-1, -2)) + np.sum(b * b, axis=(-1, -2)) - 2.0 * trace) / a.shape[-2]
    return np.sqrt(np.clip(sq, 0.0, None))


def pairwise_rmsd(probe: np.ndarray, ref: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Symmetry-aware RMSD matrix, shape (P_probe, R): ``probe`` (G, n, 3), ``ref`` (R, n, 3),
    ``perms`` (P, n) from :func:`automorphisms`."""
    probe = np.asarray(probe, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    permuted = probe[:, perms]  # (G, P, n, 3)
    rmsd = kabsch_rmsd(permuted[:, :, None], ref[None, None])  # (G, P, R)
    return rmsd.min(axis=1)


@dataclass(frozen=True)
class Coverage:
    """COV/MAT of one generated set against one reference set (one molecule)."""

    cov_r: float
    mat_r: float
    cov_p: float
    mat_p: float


def coverage(rmsd: np.ndarray, threshold: float) -> Coverage:
    """COV/MAT from an RMSD matrix of shape (generated, reference)."""
    to_ref = rmsd.min(axis=0)  # per reference conformer: closest generated
    to_gen = rmsd.min(axis=1)  # per generated conformer: closest reference
    return Coverage(
        cov_r=float(np.mean(to_ref < threshold)),
        mat_r=float(np.mean(to_ref)),
        cov_p=float(np.mean(to_gen < threshold)),
        mat_p=float(np.mean(to_gen)),
    )


def mean_coverage(items: list[Coverage]) -> dict[str, float]:
    """COV/MAT averaged over molecules, as metric names ``cov_r``, ``mat_r``, ``cov_p``, ``mat_p``."""
    return {key: float(np.mean([getattr(c, key) for c in items])) for key in ("cov_r", "mat_r", "cov_p", "mat_p")}
