"""The molecule conformer diffusion task: data, RMSD metrics, equivariance, and full runs at ``smoke``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from collapselab.contracts.registry import make_strategy
from collapselab.engine import seeding
from collapselab.engine.loop import RunSpec, execute
from collapselab.formats.records import Record
from collapselab.tasks.conformer_diffusion import ConformerDiffusionTask, molecules, reference, rmsd

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def smoke() -> ConformerDiffusionTask:
    return ConformerDiffusionTask("smoke")


def _run(task: ConformerDiffusionTask, strategy: str, root: Path, generations: int) -> list[Record]:
    spec = RunSpec(task, make_strategy(strategy), seed=0, generations=generations, root=root, command=["test"])
    return execute(spec, progress=False).records


def _numbers(records: list[Record]) -> list[tuple]:
    """What must repeat exactly: metrics, composition and compute of every generation."""
    return [(r.metrics, r.composition, r.compute) for r in records]


# ------------------------------------------------------------------ data
def test_molecule_filter_keeps_small_single_fragment_hcnof_molecules() -> None:
    from rdkit import Chem

    smiles = molecules.nci_smiles(4, 9)
    assert 380 <= len(smiles) <= 440  # about 430 with <= 9 heavy atoms, fewer with >= 4
    assert len(set(smiles)) == len(smiles)
    for s in smiles[::25]:
        mol = Chem.MolFromSmiles(s)
        assert 4 <= mol.GetNumHeavyAtoms() <= 9
        assert len(Chem.GetMolFrags(mol)) == 1
        assert {a.GetSymbol() for a in mol.GetAtoms()} <= set(molecules.ELEMENTS)


def test_graph_relations_and_hydrogens_last() -> None:
    table = molecules.graph_table(["OCC=O"], hydrogens=False)
    pairs = {tuple(e): int(r) for e, r in zip(table.edges, table.relation)}
    single, double = molecules.BOND_TYPES.index("SINGLE"), molecules.BOND_TYPES.index("DOUBLE")
    assert pairs[(0, 1)] == pairs[(1, 0)] == single
    assert pairs[(2, 3)] == double
    assert pairs[(0, 2)] == len(molecules.BOND_TYPES)  # 1-3 pair
    assert pairs[(0, 3)] == len(molecules.BOND_TYPES) + 1  # 1-4 pair
    assert table.bonds(0).tolist() == [[0, 1], [1, 2], [2, 3]]
    with_h = molecules.graph_table(["OCC=O"], hydrogens=True)
    assert with_h.n_atoms.tolist() == [8]
    assert np.all(with_h.atom_feat[:4, 0] == 0) and np.all(with_h.atom_feat[4:, 0] == 1)


# ------------------------------------------------------------------ RMSD
@pytest.mark.parametrize(
    "smiles",
    ["CC(C)(C)c1ccc(O)cc1", "OC(=O)c1ccccc1", "O=[N+]([O-])c1ccc(O)cc1"],  # graph symmetry; conjugated terminal O
)
def test_symmetric_rmsd_matches_rdkit_get_best_rms(smiles: str) -> None:
    from rdkit import Chem
    from rdkit.Chem import rdMolAlign

    settings = reference.EmbedSettings(seed=3, mmff=False, prune_rms=0.0)
    coords = reference.embed(smiles, 4, settings)
    heavy = Chem.MolFromSmiles(smiles)
    h = heavy.GetNumAtoms()
    ours = rmsd.pairwise_rmsd(coords[:, :h], coords[:, :h], rmsd.automorphisms(heavy))
    mol = Chem.Mol(heavy)
    for xyz in coords[:, :h]:
        conf = Chem.Conformer(h)
        for i, p in enumerate(xyz.astype(float)):
            conf.SetAtomPosition(i, p.tolist())
        mol.AddConformer(conf, assignId=True)
    for i in range(4):
        for j in range(4):
            expected = rdMolAlign.GetBestRMS(Chem.Mol(mol, confId=i), Chem.Mol(mol, confId=j))
            assert ours[i, j] == pytest.approx(expected, abs=1e-4)
    plain = rmsd.kabsch_rmsd(coords[0, :h], coords[1, :h])
    assert ours[0, 1] <= plain + 1e-9


def test_kabsch_rmsd_ignores_rotation_and_translation_but_not_reflection() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 3))
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    rotation = q * np.sign(np.linalg.det(q))
    assert rmsd.kabsch_rmsd(a @ rotation.T + 5.0, a) == pytest.approx(0.0, abs=1e-6)
    assert rmsd.kabsch_rmsd(-a, a) > 0.1  # a mirror image is not superposable


def test_coverage_and_matching_definitions() -> None:
    matrix = np.array([[0.2, 0.9], [0.7, 0.6], [1.5, 0.4]])  # 3 generated x 2 reference
    cov = rmsd.coverage(matrix, threshold=0.5)
    assert cov.cov_r == 1.0 and cov.mat_r == pytest.approx((0.2 + 0.4) / 2)
    assert cov.cov_p == pytest.approx(2 / 3) and cov.mat_p == pytest.approx((0.2 + 0.6 + 0.4) / 3)


# ------------------------------------------------------------- reference
def test_reference_cache_is_reused_and_rebuilt_when_its_key_changes(tmp_path, monkeypatch) -> None:
    import rdkit

    monkeypatch.setenv("COLLAPSELAB_CACHE", str(tmp_path))
    calls = []
    build = reference.build_ensembles

    def counting(*args, **kwargs):
        calls.append(args[0])
        return build(*args, **kwargs)

    monkeypatch.setattr(reference, "build_ensembles", counting)
    smiles, counts = ["CCO", "CC(=O)N", "OCC=O"], [3, 3, 3]
    settings = reference.EmbedSettings(seed=1, mmff=True, prune_rms=0.25)
    first = reference.ensembles(smiles, counts, settings)
    again = reference.ensembles(smiles, counts, settings)
    assert len(calls) == 1
    assert first.sha256() == again.sha256()
    assert np.all(first.counts >= 1) and first.n_atoms.tolist() == [9, 9, 8]
    reference.ensembles(smiles, counts, reference.EmbedSettings(seed=2, mmff=True, prune_rms=0.25))
    reference.ensembles(smiles[:2], counts[:2], settings)
    assert len(calls) == 3
    monkeypatch.setattr(rdkit, "__version__", "0.0.0-other")
    reference.ensembles(smiles, counts, settings)
    assert len(calls) == 4
    assert len(list((tmp_path / reference.NAMESPACE).glob("*.npz"))) == 4


def test_reference_is_deterministic_and_pruned() -> None:
    settings = reference.EmbedSettings(seed=5, mmff=True, prune_rms=0.25)
    a = reference.embed("CCCCO", 6, settings)
    b = reference.embed("CCCCO", 6, settings)
    np.testing.assert_array_equal(a, b)
    from rdkit import Chem

    heavy = Chem.MolFromSmiles("CCCCO")
    matrix = rmsd.pairwise_rmsd(a[:, :5], a[:, :5], rmsd.automorphisms(heavy))
    assert np.all(matrix[~np.eye(len(a), dtype=bool)] >= 0.25)


# ----------------------------------------------------------- equivariance
@pytest.mark.parametrize("radius", [0.0, 4.0])
def test_denoiser_is_e3_equivariant(radius: float) -> None:
    from e3nn import o3

    from collapselab.tasks.conformer_diffusion.model import ConformerDiffusion, ModelSpec

    table = molecules.graph_table(["OCC=O", "c1ccccc1O", "CC(C)C(=O)N"], hydrogens=True)
    torch.manual_seed(0)
    model = ConformerDiffusion(table, ModelSpec(scalars=8, vectors=4, layers=2, hidden=16, radius=radius)).double()
    batch = model.batch(torch.tensor([0, 1, 2, 1]))
    x = torch.randn(len(batch.graph), 3, dtype=torch.float64) * 1.5
    t = torch.full((len(x),), 0.3, dtype=torch.float64)
    out = model.denoiser(batch, x, t)
    rotation = o3.rand_matrix(dtype=torch.float64)
    for transform in (rotation, -rotation):  # a proper rotation and an improper one (with inversion)
        moved = model.denoiser(batch, x @ transform.T + torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64), t)
        torch.testing.assert_close(moved, out @ transform.T, atol=1e-9, rtol=1e-7)
    per_molecule = torch.zeros(batch.n_graphs, 3, dtype=torch.float64).index_add_(0, batch.graph, out)
    assert per_molecule.abs().max() < 1e-9  # zero centre of mass
    assert out.abs().max() > 1e-3  # and not trivially zero


# ---------------------------------------------------------------- the task
def test_pools_split_by_molecule_and_fresh_real_comes_from_the_reserve(smoke) -> None:
    split = smoke._data.split
    assert split.sizes() == {"test": 6, "reserve": 4, "validation": 4, "train": 26}
    parts = [set(split[p]) for p in ("train", "validation", "reserve", "test")]
    assert set.union(*parts) == set(range(40)) and sum(map(len, parts)) == 40  # disjoint, every molecule once
    assert all(np.array_equal(split[p], np.sort(split[p])) for p in split.parts)
    real = smoke.real_pool()
    assert set(real["mol"]) == set(split.train)
    assert real["pos"].shape[1:] == (smoke._data.max_atoms, 3)
    fresh = smoke.fresh_real_pool(25, np.random.default_rng(0))
    assert len(fresh) == 25 and set(fresh["mol"]) <= set(split.reserve)
    fingerprint = smoke.data_fingerprint()
    assert fingerprint["molecules"]["test"] == smoke.config["n_test"]
    assert fingerprint["molecules"]["validation"] == smoke.config["n_validation"]
    assert fingerprint["split_sha256"] == split.sha256()
    assert len(fingerprint["reference_sha256"]) == 64


def test_fit_sample_and_weights(smoke) -> None:
    real = smoke.real_pool()
    fitted = smoke.fit(real, smoke.fit_options, seeding.stream(0, 0, "fit"))
    samples = smoke.sample(fitted.model, 30, seeding.stream(0, 1, "sample"), smoke.sampling_options)
    assert len(samples) == 30 and set(samples["mol"]) <= set(real["mol"])
    assert np.all(np.isfinite(samples["pos"]))
    # a zero weight removes an item from the objective: training on the pool with half its items
    # weighted 0 must differ from training on the whole pool
    weights = np.where(np.arange(len(real)) % 2 == 0, 2.0, 0.0)
    weighted = smoke.fit(real.with_weight(weights), smoke.fit_options, seeding.stream(0, 0, "fit"))
    assert smoke.evaluate(weighted.model)["loss"] != smoke.evaluate(fitted.model)["loss"]


def test_ema_weights_are_the_moving_average_of_the_training_iterates(smoke) -> None:
    """ema_decay=d: the fitted weights are a_k = d a_(k-1) + (1 - d) w_k over the iterates w_1..w_K
    of the optimiser (a_1 = w_1), recomputed here from the iterates the same fit records."""
    import pytorch_lightning as pl

    from collapselab.toolkit.training import budget_loader, normalised_weights, train

    decay, steps = 0.6, smoke.config["steps"]
    assert ConformerDiffusionTask("smoke", {"ema_decay": decay}).config["ema_decay"] == decay
    with pytest.raises(Exception, match="config key 'ema_decay': Input should be less than 1, got 1.0"):
        ConformerDiffusionTask("smoke", {"ema_decay": 1.0})
    iterates: list[dict[str, torch.Tensor]] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            iterates.append({k: v.detach().clone() for k, v in module.denoiser.named_parameters()})

    def build():
        module = smoke.build_model(steps, smoke.fit_options)
        module.ema_decay = decay
        averaging = module.configure_callbacks()
        module.configure_callbacks = lambda: [Record(), *averaging]
        return module

    real, rng = smoke.real_pool(), seeding.stream(0, 0, "fit")
    loader = budget_loader(smoke.training_tensors(real), normalised_weights(None, len(real), smoke.name),
                           smoke.config["batch_size"], steps, rng)
    averaged, _ = train(build, loader, rng, smoke.name, steps=steps)
    assert len(iterates) == steps >= 2
    expected = dict(iterates[0])
    for weights in iterates[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * weights[k] for k in expected}
    got = dict(averaged.denoiser.named_parameters())
    assert all(torch.allclose(got[k], expected[k], rtol=1e-5, atol=1e-6) for k in expected)
    assert not all(torch.allclose(got[k], iterates[-1][k]) for k in expected)  # not the last iterate


def test_smoke_run_records_ensemble_metrics_and_writes_sdf(smoke, tmp_path) -> None:
    records = _run(smoke, "replace", tmp_path / "a", generations=2)
    assert [r.generation for r in records] == [0, 1, 2]
    for record in records:
        metrics = record.metrics
        assert {"loss", "cov_r", "mat_r", "cov_p", "mat_p", "bond_mae", "variance_ratio", "mode_coverage",
                "hallucination", "tail_loss", "common_loss"} <= set(metrics)
        assert metrics["mode_coverage"] == metrics["cov_r"] and 0.0 <= metrics["hallucination"] <= 1.0
        assert 0.0 <= metrics["cov_r"] <= 1.0 and metrics["mat_r"] > 0.0

    run_dir = next((tmp_path / "a").rglob("generations.jsonl")).parent
    names = sorted(p.name for p in (run_dir / "artifacts").iterdir())
    assert names == sorted([f"samples-gen-{g:04d}.{kind}" for g in range(3) for kind in ("sdf", "png")]
                           + [f"coverage-gen-{g:04d}.txt" for g in range(3)])
    from PIL import Image

    with Image.open(run_dir / "artifacts" / "samples-gen-0002.png") as drawing:  # the gallery's picture of the SDF
        assert drawing.width >= 200 and "generated conformers" in drawing.info["Description"]
    from rdkit import Chem

    supplier = [m for m in Chem.SDMolSupplier(str(run_dir / "artifacts" / "samples-gen-0002.sdf"))]
    assert len(supplier) > 0 and all(m is not None and m.GetNumConformers() == 1 for m in supplier)
    table = (run_dir / "artifacts" / "coverage-gen-0002.txt").read_text()
    assert "RDKit ETKDGv3" in table and "model, generation 2" in table
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["task"]["data"]["rdkit"]


def test_conformers_of_aromatic_rings_are_drawn(tmp_path) -> None:
    """Heavy-atom conformers of an aromatic ring molecule (as the cpu preset writes them) draw
    without RDKit's "RingInfo not initialized" (the unsanitised copy needs its rings found)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from collapselab.tasks.conformer_diffusion import artifacts

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)c1ccncc1"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    mol = Chem.RemoveHs(mol)
    mol.SetProp("_Name", "CC(=O)c1ccncc1 | generated")
    (tmp_path / "one.sdf").write_text(Chem.MolToMolBlock(mol) + "$$$$\n")
    drawn = artifacts.draw_sdf(tmp_path / "one.sdf")
    assert drawn is not None and drawn[0][:8] == b"\x89PNG\r\n\x1a\n" and "c1ccncc1" in drawn[1]


def test_evaluation_is_deterministic(smoke) -> None:
    fitted = smoke.fit(smoke.real_pool(), smoke.fit_options, seeding.stream(1, 0, "fit"))
    first = smoke.evaluate(fitted.model)
    smoke._memo = None  # force the samples to be drawn again
    assert smoke.evaluate(fitted.model) == first


# ------------------------------------------------------- collapse-profile measures
def test_ring_systems_of_known_molecules() -> None:
    from collapselab.tasks.conformer_diffusion import collapse_measures as cm

    assert cm.ring_systems("CCO") == ["none"]
    assert cm.ring_systems("c1ccc2ccccc2c1") == ["c1ccc2ccccc2c1"]  # fused rings: one system
    assert cm.ring_systems("c1ccccc1CC1CC1") == ["C1CC1", "c1ccccc1"]


def test_profile_measures_move_the_collapse_way_on_reference_ensembles(smoke: ConformerDiffusionTask) -> None:
    """Reference conformers as samples: spread ratio 1, nothing invalid; every conformer replaced by the
    first (a sampler that lost its variance and modes): spread 0 and lower COV-R; coordinates of noise:
    invalid geometry; the tail stratum is a non-empty part of the test molecules."""
    from collapselab.tasks.conformer_diffusion import collapse_measures as cm
    from collapselab.tasks.conformer_diffusion.evaluation import ensemble_metrics

    data = smoke._data
    test = np.asarray(data.split.test)
    real = [data.conformers(int(m)) for m in test]
    collapsed = [np.repeat(c[:1], len(c), axis=0) for c in real]
    rng = np.random.default_rng(0)
    noise = [rng.normal(0.0, 2.0, c.shape) for c in real]
    measures = {name: cm.sample_measures(data, test, gen, ensemble_metrics(data, test, gen, 0.5), False)
                for name, gen in (("real", real), ("collapsed", collapsed), ("noise", noise))}
    assert measures["real"]["variance_ratio"] == pytest.approx(1.0)
    assert measures["real"]["hallucination"] == 0.0 and measures["real"]["mode_coverage"] == 1.0
    assert measures["collapsed"]["variance_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert measures["collapsed"]["mode_coverage"] < measures["real"]["mode_coverage"]
    assert measures["noise"]["hallucination"] > 0.9
    tail = cm.tail_molecules(data)
    assert 0 < len(tail) < len(test) and set(tail) <= set(test)
