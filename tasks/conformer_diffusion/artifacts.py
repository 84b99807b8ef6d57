"""Human-readable outputs of a generation: sampled conformers as SDF and a COV/MAT table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tabulate import tabulate

from collapselab.tasks.conformer_diffusion import molecules
from collapselab.tasks.conformer_diffusion.data import ConformerData


def write_sdf(
    path: Path, data: ConformerData, mols: Sequence[int] | np.ndarray, generated: Sequence[np.ndarray], generation: int
) -> None:
    """One SDF record per generated conformer, named after its molecule, generation and index."""
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    writer = Chem.SDWriter(str(path))
    try:
        for m, conformers in zip(mols, generated):
            smiles = data.table.smiles[int(m)]
            mol = molecules.rdkit_mol(smiles, data.table.hydrogens)
            for k, xyz in enumerate(conformers):
                conformer = Chem.Conformer(mol.GetNumAtoms())
                for i, (x, y, z) in enumerate(xyz.astype(float)):
                    conformer.SetAtomPosition(i, Point3D(x, y, z))
                mol.RemoveAllConformers()
                mol.AddConformer(conformer, assignId=True)
                mol.SetProp("_Name", f"{smiles} | generation {generation} | sample {k}")
                writer.write(mol)
    finally:
        writer.close()


def coverage_table(rows: Mapping[str, Mapping[str, float]], threshold: float, counts: str) -> str:
    """A text table of COV/MAT and bond error per method (model, ETKDG references)."""
    keys = ("cov_r", "mat_r", "cov_p", "mat_p", "bond_mae")
    body = [[name, *(f"{metrics[k]:.3f}" for k in keys)] for name, metrics in rows.items()]
    headers = ["method", "COV-R", "MAT-R (A)", "COV-P", "MAT-P (A)", "bond MAE (A)"]
    table = tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)
    return f"heavy-atom RMSD, COV threshold {threshold} A; {counts}\n\n{table}\n"
