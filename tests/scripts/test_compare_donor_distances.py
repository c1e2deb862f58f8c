"""compare_donor_distances and permute_composition_groups on a tiny fit and its tables."""

import numpy as np
import pandas as pd
import pytest

from nam_core import NAM, simulate
from nam_core.inputs.fit_inputs import FitInputs, write_fit_inputs
from nam_core.results.composition import genotype_groups

from .conftest import load_script

J = 24


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    """A NAM fit, its inputs, groups, cell types, genotype PCs and donor tables on disk."""
    path = tmp_path_factory.mktemp("tiny_fit")
    data = simulate(J=J, n_clusters=2, q=2, p=3, n_cell_types=3, mean_cells=30, seed=1)
    model = NAM(K=4, L=6, n_init=1, seed=0, device="cpu", verbose=False, max_iter=50).fit(
        data.X, data.Y, data.group)
    model.save(path / "best.npz")
    names = np.array([f"D{j}" for j in range(J)])
    write_fit_inputs(path / "inputs.npz", FitInputs(
        x=data.X, y=data.Y.astype(np.float32), group=data.group, individuals=names,
        cells=np.array([f"cell{n}" for n in range(len(data.group))])))
    pcs = pd.DataFrame(data.X, columns=["PC1", "PC2"], index=pd.Index(names, name="individual"))
    pcs.to_csv(path / "pcs.tsv", sep="\t")
    genotype_groups(model, pcs.reset_index()).to_csv(path / "groups.tsv", sep="\t", index=False)
    atoms = [f"C{l + 1}" for l in np.unique(model.cell_labels_)]
    pd.DataFrame({"atom": atoms, "group": [f"T{i % 2 + 1}" for i in range(len(atoms))]}).to_csv(
        path / "cell_types.tsv", sep="\t", index=False)
    pd.DataFrame({"group": ["T1", "T2"], "cell_type": ["B", "NK"]}).to_csv(
        path / "type_names.tsv", sep="\t", index=False)
    pd.DataFrame({"individual": names}).to_csv(path / "donors.tsv", sep="\t", index=False)
    pd.DataFrame({"individual": names, "pool": [f"P{j % 4}" for j in range(J)]}).to_csv(
        path / "donors_pool.tsv", sep="\t", index=False)
    return path


@pytest.mark.parametrize("donors, n_rows", [("donors.tsv", 2), ("donors_pool.tsv", 4)])
def test_mantel_table_pairs_and_figure(tiny_fit, tmp_path, donors, n_rows):
    p = tiny_fit
    out = {k: tmp_path / f"{k}{ext}" for k, ext in
           (("mantel", ".tsv"), ("pairs", ".tsv.gz"), ("png", ".png"), ("pdf", ".pdf"))}
    table = load_script("compare_donor_distances").compare(
        p / "best.npz", p / "inputs.npz", p / "groups.tsv", p / "cell_types.tsv", p / "pcs.tsv",
        p / donors, out["mantel"], out["pairs"], out["png"], out["pdf"], "pool",
        {"n_permutations": 99, "seed": 0, "pseudo_count": 0.5})
    written = pd.read_csv(out["mantel"], sep="\t")
    assert len(written) == n_rows == len(table)
    assert (written["n_donors"] == J).all() and written["p"].between(0.01, 1).all()
    assert len(pd.read_csv(out["pairs"], sep="\t")) == J * (J - 1) // 2
    assert out["png"].stat().st_size > 0 and out["pdf"].stat().st_size > 0


@pytest.mark.parametrize("donors, within", [("donors.tsv", "all"), ("donors_pool.tsv", "stratum")])
def test_permutation_table_per_type(tiny_fit, tmp_path, donors, within):
    p = tiny_fit
    table = load_script("permute_composition_groups").permute_groups(
        p / "best.npz", p / "inputs.npz", p / "groups.tsv", p / "cell_types.tsv",
        p / "type_names.tsv", p / donors, tmp_path / "perm.tsv", "pool",
        {"n_permutations": 99, "seed": 0, "transform": "logit"})
    written = pd.read_csv(tmp_path / "perm.tsv", sep="\t")
    assert list(written["cell_cluster"]) == ["T1", "T2"] == list(table["cell_cluster"])
    assert list(written["cell_type"]) == ["B", "NK"]
    assert (written["permuted_within"] == within).all()
    assert written["p_perm"].between(0.01, 1).all()
