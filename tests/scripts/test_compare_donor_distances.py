"""scripts/compare_donor_distances.py on tiny tables: the Mantel table, the pairs and the figure."""

import numpy as np
import pandas as pd

from .conftest import load_script


def _tables(tmp_path, with_pool: bool):
    rng = np.random.default_rng(0)
    J = 12
    names = [f"D{j}" for j in range(J)]
    counts = pd.DataFrame(rng.poisson(20, size=(J, 3)), columns=["C1", "C2", "C3"])
    counts.insert(0, "cluster", "I1")
    counts.insert(0, "individual", names)
    counts.to_csv(tmp_path / "counts.tsv", sep="\t", index=False)
    pd.DataFrame({"atom": ["C1", "C2", "C3"], "group": ["T1", "T1", "T2"]}).to_csv(
        tmp_path / "groups.tsv", sep="\t", index=False)
    pd.DataFrame(rng.normal(size=(J, 2)), columns=["PC1", "PC2"],
                 index=pd.Index(names, name="individual")).to_csv(tmp_path / "pcs.tsv", sep="\t")
    donors = pd.DataFrame({"individual": names})
    if with_pool:
        donors["pool"] = [f"P{j % 3}" for j in range(J)]
    donors.to_csv(tmp_path / "donors.tsv", sep="\t", index=False)


def test_mantel_table_pairs_and_figure(tmp_path):
    script = load_script("compare_donor_distances")
    for with_pool, n_rows in ((False, 2), (True, 4)):
        _tables(tmp_path, with_pool)
        out = {k: tmp_path / f"{k}{with_pool}{ext}" for k, ext in
               (("mantel", ".tsv"), ("pairs", ".tsv.gz"), ("png", ".png"), ("pdf", ".pdf"))}
        table = script.compare(tmp_path / "counts.tsv", tmp_path / "groups.tsv",
                               tmp_path / "pcs.tsv", tmp_path / "donors.tsv", out["mantel"],
                               out["pairs"], out["png"], out["pdf"], "pool",
                               {"n_permutations": 99, "seed": 0, "pseudo_count": 0.5})
        written = pd.read_csv(out["mantel"], sep="\t")
        assert len(written) == n_rows == len(table)
        assert (written["n_donors"] == 12).all() and written["p"].between(0.01, 1).all()
        assert len(pd.read_csv(out["pairs"], sep="\t")) == 66
        assert out["png"].stat().st_size > 0 and out["pdf"].stat().st_size > 0
