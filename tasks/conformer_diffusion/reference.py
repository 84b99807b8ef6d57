"""Reference conformer ensembles from RDKit: ETKDGv3 embedding, MMFF94 optimisation, RMSD pruning.

ETKDGv3 is the knowledge-based distance-geometry embedder of Riniker & Landrum 2015
(J. Chem. Inf. Model. 55:2562) with the small-ring/macrocycle terms of Wang et al. 2020
(J. Chem. Inf. Model. 60:2044); MMFF94 is Halgren's force field (1996, J. Comput. Chem. 17:490).
Each molecule is embedded with explicit hydrogens, optionally MMFF-optimised, and then pruned
greedily (lowest energy first) so that no two kept conformers are within ``prune_rms``
(symmetry-aware heavy-atom RMSD). Molecules are processed in parallel; every molecule has its
own seed (from its SMILES), so the result does not depend on the number of workers. Results
are cached with :func:`collapselab.toolkit.cache.cached`, keyed by the RDKit version, the settings, this
module's format version and the SHA-256 of the molecule list: they are built once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from collapselab.toolkit.cache import cached

FORMAT_VERSION = 2  # bump when the way conformers are made or pruned changes
NAMESPACE = "conformer_diffusion"


@dataclass(frozen=True)
class EmbedSettings:
    """How conformers are made (all of it goes into the cache key)."""

    seed: int
    mmff: bool
    prune_rms: float
    mmff_iters: int = 2000


@dataclass(frozen=True)
class Ensembles:
    """Conformers (all atoms, hydrogens last) of a list of molecules, concatenated.

    Molecule ``m`` has ``counts[m]`` conformers of ``n_atoms[m]`` atoms, stored in
    ``coords[block_ptr[m]:block_ptr[m+1]]`` as (counts[m] * n_atoms[m], 3) rows.
    """

    smiles: tuple[str, ...]
    n_atoms: np.ndarray
    counts: np.ndarray
    coords: np.ndarray

    @property
    def block_ptr(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts * self.n_atoms)]).astype(np.int64)

    def conformers(self, m: int) -> np.ndarray:
        """Molecule ``m``'s conformers, shape (counts[m], n_atoms[m], 3)."""
        ptr = self.block_ptr
        return self.coords[ptr[m] : ptr[m + 1]].reshape(int(self.counts[m]), int(self.n_atoms[m]), 3)

    def select(self, indices: Sequence[int] | np.ndarray) -> Ensembles:
        """The ensembles of molecules ``indices``, in that order."""
        return Ensembles(
            smiles=tuple(self.smiles[int(m)] for m in indices),
            n_atoms=self.n_atoms[np.asarray(indices, dtype=np.int64)],
            counts=self.counts[np.asarray(indices, dtype=np.int64)],
            coords=np.concatenate([self.conformers(int(m)).reshape(-1, 3) for m in indices]),
        )

    def sha256(self) -> str:
        digest = hashlib.sha256("\n".join(self.smiles).encode())
        for array in (self.n_atoms, self.counts, self.coords):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def molecule_seed(smiles: str, seed: int) -> int:
    """A per-molecule RDKit seed (>= 1: RDKit treats 0 specially) from the SMILES and ``seed``."""
    return 1 + (zlib.crc32(smiles.encode()) ^ (seed * 2654435761)) % (2**31 - 2)


def embed(smiles: str, count: int, settings: EmbedSettings) -> np.ndarray:
    """Up to ``count`` conformers of ``smiles`` (shape (k, atoms incl. H, 3), k may be smaller)."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

    from collapselab.tasks.conformer_diffusion.rmsd import automorphisms, pairwise_rmsd

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = molecule_seed(smiles, settings.seed)  # type: ignore[assignment]
    params.numThreads = 1  # type: ignore[assignment]
    with rdBase.BlockLogs():
        ids = list(rdDistGeom.EmbedMultipleConfs(mol, count, params))
        if not ids:
            return np.zeros((0, mol.GetNumAtoms(), 3), dtype=np.float32)
        energies = np.zeros(len(ids))
        if settings.mmff:
            result = rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=settings.mmff_iters)
            energies = np.array([energy for _, energy in result])
    coords = np.stack([mol.GetConformer(i).GetPositions() for i in ids])
    if settings.prune_rms <= 0:
        return coords.astype(np.float32)
    heavy = Chem.RemoveHs(mol)
    h = heavy.GetNumAtoms()
    rmsd = pairwise_rmsd(coords[:, :h], coords[:, :h], automorphisms(heavy))
    kept: list[int] = []
    for i in np.argsort(energies, kind="stable"):
        if all(rmsd[i, j] >= settings.prune_rms for j in kept):
            kept.append(int(i))
    return coords[kept].astype(np.float32)


def _embed_task(args: tuple[str, int, EmbedSettings]) -> np.ndarray:
    return embed(*args)


def _can_spawn() -> bool:
    """Whether worker processes can start: a spawned worker re-imports ``__main__`` from its
    file, which a script read from standard input does not have."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return main is None or os.path.exists(main)


def build_ensembles(
    smiles: Sequence[str], counts: Sequence[int], settings: EmbedSettings, workers: int | None = None
) -> Ensembles:
    """Embed every molecule (in parallel over ``workers`` processes; all cores by default)."""
    from tqdm.auto import tqdm

    jobs = [(s, int(c), settings) for s, c in zip(smiles, counts)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) // 16)) if _can_spawn() else 1
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=get_context("spawn")))
            mapped = pool.map(_embed_task, jobs, chunksize=8)
        else:
            mapped = map(_embed_task, jobs)
        progress = tqdm(
            mapped, total=len(jobs), desc="RDKit conformers (cached once)", unit="mol", leave=False, file=sys.stderr,
            disable=None,  # shown on a terminal only
        )
        results = list(progress)
    return Ensembles(
        smiles=tuple(smiles),
        n_atoms=np.array([r.shape[1] for r in results], dtype=np.int64),
        counts=np.array([r.shape[0] for r in results], dtype=np.int64),
        coords=np.concatenate([r.reshape(-1, 3) for r in results]).astype(np.float32),
    )


def _save(ensembles: Ensembles, path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        smiles=np.array(ensembles.smiles),
        n_atoms=ensembles.n_atoms,
        counts=ensembles.counts,
        coords=ensembles.coords,
    )
    path.write_bytes(buffer.getvalue())


def _load(path: Path) -> Ensembles:
    with np.load(path, allow_pickle=False) as data:
        return Ensembles(
            smiles=tuple(str(s) for s in data["smiles"]),
            n_atoms=data["n_atoms"],
            counts=data["counts"],
            coords=data["coords"],
        )


def cache_key(smiles: Sequence[str], counts: Sequence[int], settings: EmbedSettings) -> dict[str, object]:
    """Everything the ensembles depend on: RDKit version, settings, format and molecule list."""
    import rdkit

    listing = "\n".join(f"{s}\t{int(c)}" for s, c in zip(smiles, counts))
    return {
        "kind": "conformer-ensembles",
        "format": FORMAT_VERSION,
        "rdkit": rdkit.__version__,
        "settings": asdict(settings),
        "molecules_sha256": hashlib.sha256(listing.encode()).hexdigest(),
        "molecules": len(smiles),
    }


def ensembles(
    smiles: Sequence[str], counts: Sequence[int], settings: EmbedSettings, workers: int | None = None
) -> Ensembles:
    """The cached ensembles for ``smiles`` (``counts[m]`` embeddings each), built on first use."""
    return cached(
        NAMESPACE,
        cache_key(smiles, counts, settings),
        ".npz",
        lambda: build_ensembles(smiles, counts, settings, workers),
        _save,
        _load,
    )
