"""The task's data: molecules, their graphs, reference ensembles and the split by molecule.

Molecules are split (seeded shuffle, :func:`collapselab.toolkit.splits.carve`) into held-out
test molecules, a reserve for the fresh-real oracle, validation molecules (model selection)
and training molecules. An item of a pool is one conformer: the molecule's
index into the graph table (``mol``) and its coordinates padded to the largest molecule
(``pos``, Angstrom, zeros in the padding).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from collapselab.tasks.conformer_diffusion import molecules, reference
from collapselab.toolkit.splits import IndexSplit, carve

if TYPE_CHECKING:
    from collapselab.tasks.conformer_diffusion.task import ConformerConfig


@dataclass(frozen=True)
class ConformerData:
    table: molecules.GraphTable
    ensembles: reference.Ensembles
    split: IndexSplit

    @property
    def max_atoms(self) -> int:
        return self.table.max_atoms

    def heavy_atoms(self, m: int) -> int:
        return int(np.sum(self.table.atom_feat[self.table.atom_ptr[m] : self.table.atom_ptr[m + 1], 0] == 0))

    def conformers(self, m: int) -> np.ndarray:
        """Reference conformers of molecule ``m`` over the graph's atoms, shape (k, atoms, 3)."""
        return self.ensembles.conformers(m)[:, : int(self.table.n_atoms[m])]

    def items(self, mols: np.ndarray) -> dict[str, np.ndarray]:
        """Every reference conformer of molecules ``mols`` as a pool payload."""
        ids, pos = [], []
        for m in mols:
            conformers = self.conformers(int(m))
            padded = np.zeros((len(conformers), self.max_atoms, 3), dtype=np.float32)
            padded[:, : conformers.shape[1]] = conformers
            ids.append(np.full(len(conformers), m, dtype=np.int64))
            pos.append(padded)
        return {"mol": np.concatenate(ids), "pos": np.concatenate(pos)}

    def fingerprint(self) -> dict[str, Any]:
        import rdkit

        return {
            "molecules_sha256": hashlib.sha256("\n".join(self.table.smiles).encode()).hexdigest(),
            "reference_sha256": self.ensembles.sha256(),
            "split_sha256": self.split.sha256(),
            "rdkit": rdkit.__version__,
            "molecules": self.split.sizes(),
            "reference_conformers": {part: int(self.ensembles.counts[mols].sum()) for part, mols in self.split.parts.items()},
        }


def reference_settings(config: ConformerConfig) -> reference.EmbedSettings:
    return reference.EmbedSettings(seed=config.ref_seed, mmff=True, prune_rms=config.ref_prune_rms)


def load(config: ConformerConfig) -> ConformerData:
    """Molecules, cached reference ensembles and the split for a task configuration."""
    smiles = molecules.nci_smiles(config.min_heavy, config.max_heavy)
    if config.molecules:
        smiles = smiles[: config.molecules]
    ensembles = reference.ensembles(smiles, [config.ref_embed] * len(smiles), reference_settings(config))
    ensembles = ensembles.select(np.flatnonzero(ensembles.counts > 0))
    order = np.random.default_rng([config.split_seed, 5]).permutation(len(ensembles.smiles))
    sizes = [("test", config.n_test), ("reserve", config.n_reserve), ("validation", config.n_validation)]
    split = carve(order, sizes, "train", f"the {len(order)} molecules with reference conformers").sorted()
    return ConformerData(molecules.graph_table(ensembles.smiles, config.hydrogens), ensembles, split)
