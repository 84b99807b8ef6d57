"""Human-readable outputs of a generation: sampled conformers as SDF, a drawing of some of them (the
gallery's image) and a COV/MAT table."""

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


CONFORMERS_DRAWN = 6
PANEL = (200, 170)


def draw_sdf(path: Path) -> tuple[bytes, str] | None:
    """A PNG grid of up to :data:`CONFORMERS_DRAWN` conformers of the SDF file ``path`` (one per molecule
    first), drawn by RDKit (``MolDraw2DCairo``) from their own coordinates: heavy atoms, rotated onto
    their two principal axes (``CanonicalizeConformer``) and projected, so distorted geometry shows;
    and its caption (``None``: no readable molecule)."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdMolTransforms
    from rdkit.Chem.Draw import rdMolDraw2D

    rdBase.DisableLog("rdApp.*")
    read = [mol for mol in Chem.SDMolSupplier(str(path), removeHs=False) if mol is not None and mol.GetNumConformers()]
    if not read:
        return None
    names = [mol.GetProp("_Name").split(" | ")[0] if mol.HasProp("_Name") else "" for mol in read]
    first = [i for i, name in enumerate(names) if name not in names[:i]]
    chosen = (first + [i for i in range(len(read)) if i not in first])[:CONFORMERS_DRAWN]
    mols = []
    for index in chosen:
        mol = Chem.RemoveHs(read[index], sanitize=False)
        mol.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(mol)  # drawing needs ring information, which an unsanitised copy lacks
        rdMolTransforms.CanonicalizeConformer(mol.GetConformer())
        mols.append(mol)
    columns = min(3, len(mols))
    rows = -(-len(mols) // columns)
    drawer = rdMolDraw2D.MolDraw2DCairo(columns * PANEL[0], rows * PANEL[1], PANEL[0], PANEL[1])
    # draw the generated coordinates (no fresh 2D layout), with legible atom labels
    for option, value in {"prepareMolsBeforeDrawing": False, "minFontSize": 11, "bondLineWidth": 2}.items():
        setattr(drawer.drawOptions(), option, value)
    legends = [names[i][:40] for i in chosen]
    drawer.DrawMolecules(mols, legends=legends)
    drawer.FinishDrawing()
    caption = (f"{len(mols)} of {len(read)} generated conformers ({', '.join(dict.fromkeys(legends))}): heavy atoms "
               "on their two principal axes")
    return drawer.GetDrawingText(), caption


def coverage_table(rows: Mapping[str, Mapping[str, float]], threshold: float, counts: str) -> str:
    """A text table of COV/MAT and bond error per method (model, ETKDG references)."""
    keys = ("cov_r", "mat_r", "cov_p", "mat_p", "bond_mae")
    body = [[name, *(f"{metrics[k]:.3f}" for k in keys)] for name, metrics in rows.items()]
    headers = ["method", "COV-R", "MAT-R (A)", "COV-P", "MAT-P (A)", "bond MAE (A)"]
    table = tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)
    return f"heavy-atom RMSD, COV threshold {threshold} A; {counts}\n\n{table}\n"
