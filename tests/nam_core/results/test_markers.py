import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from nam_core.errors import NAMInputError
from nam_core.inputs.expression import preprocess, read_counts
from nam_core.results.markers import MARKER_COLUMNS, RECOVERY_COLUMNS, marker_recovery, rank_markers
from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.demo import make_demo_cohort


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    paths = make_demo_cohort(
        tmp_path_factory.mktemp("demo"), CohortSpec(n_individuals=30, mean_cells=60, n_snps=100, seed=0)
    )
    adata = preprocess(read_counts(paths["counts"], "individual"), n_pcs=10)
    known = pd.read_csv(paths["known_markers"], sep="\t")
    return adata, known


def _toy(n_per_group=(20, 20, 1), seed=0):
    """Three groups; gene g{k} is high in group k. Log-scale values."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(["a", "b", "c"], n_per_group)
    X = rng.normal(1.0, 0.1, size=(labels.size, 6)).clip(0)
    for k, g in enumerate("abc"):
        X[labels == g, k] += 2.0
    obs = pd.DataFrame({"cluster": labels}, index=[f"c{i}" for i in range(labels.size)])
    var = pd.DataFrame(index=[f"g{k}" for k in range(6)])
    return ad.AnnData(X=X.astype(np.float32), obs=obs, var=var)


def test_rank_markers_recovers_known_markers(demo):
    adata, known = demo
    markers = rank_markers(adata, "cell_type", n_genes=10)
    assert list(markers.columns) == MARKER_COLUMNS
    types = adata.obs["cell_type"].astype(str).unique()
    assert set(markers["cluster"]) == set(types)
    for _, ranks in markers.groupby("cluster")["rank"]:
        assert ranks.tolist() == list(range(1, 11))
    assert (markers["pval_adj"] < 1e-3).all()
    assert (markers["logfoldchange"] > 0).all()

    recovery = marker_recovery(markers, {t: t for t in types}, known, top_n=10)
    assert list(recovery.columns) == RECOVERY_COLUMNS
    assert len(recovery) == len(types)
    assert (recovery["n_known_found"] >= 3).all(), recovery
    # found_genes lists exactly the known markers among the top 10
    for _, row in recovery.iterrows():
        found = row["found_genes"].split(",")
        assert len(found) == row["n_known_found"]
        assert set(found) <= set(known.loc[known["cell_type"] == row["cell_type"], "gene"])


def test_rank_markers_does_not_modify_input(demo):
    adata, _ = demo
    before = set(adata.uns.keys())
    rank_markers(adata, "cell_type", n_genes=3, method="t-test")
    assert set(adata.uns.keys()) == before


def test_rank_markers_on_layer():
    adata = _toy(n_per_group=(20, 20, 20))
    adata.layers["log"] = adata.X.copy()
    adata.X = np.zeros_like(adata.X)
    markers = rank_markers(adata, "cluster", n_genes=1, layer="log")
    assert markers.set_index("cluster")["gene"].to_dict() == {"a": "g0", "b": "g1", "c": "g2"}


def test_small_clusters_skipped(caplog):
    adata = _toy()
    with caplog.at_level(logging.INFO, logger="nam_core.results.markers"):
        markers = rank_markers(adata, "cluster", n_genes=2)
    assert set(markers["cluster"]) == {"a", "b"}
    assert "cluster c has 1 cell(s); skipped" in caplog.text
    assert markers.set_index(["cluster", "rank"]).loc[("a", 1), "gene"] == "g0"


def test_rank_markers_errors():
    adata = _toy()
    with pytest.raises(NAMInputError, match="no column 'leiden'"):
        rank_markers(adata, "leiden")
    with pytest.raises(NAMInputError, match="layer 'counts' not found"):
        rank_markers(adata, "cluster", layer="counts")
    with pytest.raises(NAMInputError, match="method"):
        rank_markers(adata, "cluster", method="magic")
    adata.obs["one"] = "x"
    with pytest.raises(NAMInputError, match="at least two clusters"):
        rank_markers(adata, "one")


def test_rank_markers_warns_on_counts(caplog):
    adata = _toy(n_per_group=(20, 20, 20))
    adata.X = np.round(adata.X * 40)
    with caplog.at_level(logging.WARNING, logger="nam_core.results.markers"):
        rank_markers(adata, "cluster", n_genes=1)
    assert "looks like raw counts" in caplog.text


def test_marker_recovery_by_hand():
    markers = pd.DataFrame(
        {
            "cluster": ["0", "0", "0", "1", "1", "2"],
            "rank": [1, 2, 3, 1, 2, 1],
            "gene": ["CD3D", "LYZ", "IL7R", "MS4A1", "CD3D", "GNLY"],
        }
    )
    known = pd.DataFrame(
        {"cell_type": ["T", "T", "B", "B"], "gene": ["CD3D", "IL7R", "MS4A1", "CD79A"]}
    )
    out = marker_recovery(markers, {0: "T", 1: "B"}, known, top_n=2)  # int keys work
    out = out.set_index("cluster")
    assert out.loc["0", "n_known_found"] == 1 and out.loc["0", "found_genes"] == "CD3D"
    assert out.loc["1", "n_known_found"] == 1 and out.loc["1", "found_genes"] == "MS4A1"
    assert pd.isna(out.loc["2", "cell_type"]) and out.loc["2", "n_known_found"] == 0
    full = marker_recovery(markers, {"0": "T"}, known, top_n=3).set_index("cluster")
    assert full.loc["0", "found_genes"] == "CD3D,IL7R"


def test_marker_recovery_missing_columns():
    with pytest.raises(NAMInputError, match="known markers table lacks columns"):
        marker_recovery(
            pd.DataFrame({"cluster": [], "rank": [], "gene": []}), {}, pd.DataFrame({"x": []})
        )


def test_subsample_groups_caps_each_cluster_and_repeats():
    from nam_core.results.markers import subsample_groups

    labels = np.array(["a"] * 50 + ["b"] * 5 + ["c"] * 30)
    rows = subsample_groups(labels, 10, seed=3)
    assert np.all(np.diff(rows) > 0)
    assert dict(zip(*np.unique(labels[rows], return_counts=True), strict=True)) == {
        "a": 10, "b": 5, "c": 10}
    assert np.array_equal(rows, subsample_groups(labels, 10, seed=3))
    assert not np.array_equal(rows, subsample_groups(labels, 10, seed=4))
    assert np.array_equal(subsample_groups(labels, None), np.arange(85))


def test_markers_on_a_subsample_agree_with_all_cells(demo):
    """Each cell type's top-3 markers from at most 150 cells per type overlap those of all cells.

    The demo's types hold 150 to 610 cells here, so the larger ones are cut to 150.
    """
    from nam_core.results.markers import subsample_groups

    adata, _ = demo
    full = rank_markers(adata, "cell_type", n_genes=3)
    rows = subsample_groups(adata.obs["cell_type"], 150, seed=0)
    assert rows.size < 0.6 * adata.n_obs
    sub = rank_markers(adata[rows].copy(), "cell_type", n_genes=3)
    assert full["cluster"].nunique() == adata.obs["cell_type"].nunique() > 1
    for cluster, top in full.groupby("cluster")["gene"]:
        assert set(top) & set(sub.loc[sub["cluster"] == cluster, "gene"]), cluster
