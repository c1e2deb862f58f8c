"""Each script's function on a tiny demo cohort, in the order of the workflow's DAG."""

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from nam_core import NAM

from .conftest import TINY, load_script

FIT = dict(K=6, L=10, init="kmeans", max_iter=200, tol=None, dtype="float64", device="cpu",
           alpha=None, beta=None, s=[1.0, 1.0], r=[1.0, 1.0], trunc_v="tsb", trunc_u="tsb",
           memory_budget=2**24)
PREPROCESS = dict(min_genes=100, min_cells=3, min_counts=300, max_pct_mt=20.0, n_top_genes=300,
                  n_pcs=5, target_sum=1000.0)


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory):
    """Every script of the DAG, once; returns the folder and the paths written."""
    d = tmp_path_factory.mktemp("scripts")
    p = {name: d / name for name in (
        "matching.tsv", "pcs.tsv", "eigen.tsv", "pre.h5ad", "umap.tsv", "inputs.npz",
        "best.npz", "restarts.tsv", "traces.tsv", "cells.h5ad", "individuals.tsv",
        "counts.tsv", "proportions.tsv", "by_cluster.tsv", "markers.tsv", "evaluation.tsv",
        "recovery.tsv", "leiden.tsv")}
    load_script("match_individuals").match(cohort["bfile"], cohort["counts"], p["matching.tsv"],
                                           "individual")
    load_script("compute_genotype_pcs").compute(cohort["bfile"], p["pcs.tsv"], p["eigen.tsv"],
                                                n_pcs=3, min_maf=0.01, max_missing=0.05,
                                                chunk_snps=500)
    load_script("preprocess_expression").preprocess_cells(
        cohort["counts"], p["matching.tsv"], p["pre.h5ad"], "individual", PREPROCESS)
    load_script("compute_umap").compute(p["pre.h5ad"], p["umap.tsv"], n_neighbors=10, seed=0)
    load_script("cluster_cells_leiden").cluster(p["pre.h5ad"], p["leiden.tsv"], [0.5, 1.0],
                                                n_neighbors=10, seed=0)
    load_script("assemble_fit_inputs").assemble(p["pcs.tsv"], p["pre.h5ad"], p["matching.tsv"],
                                                p["inputs.npz"], "individual")
    fits = [d / f"seed{s}.npz" for s in (0, 1)]
    for seed, path in zip((0, 1), fits, strict=True):
        load_script("fit_nam").fit(p["inputs.npz"], path, seed, FIT)
    load_script("select_best_fit").select(fits, p["best.npz"], p["restarts.tsv"], p["traces.tsv"])
    outs = {"cells": p["cells.h5ad"], "individuals": p["individuals.tsv"],
            "counts": p["counts.tsv"], "proportions": p["proportions.tsv"],
            "by_cluster": p["by_cluster.tsv"]}
    load_script("write_results").write(p["best.npz"], p["inputs.npz"], p["pre.h5ad"],
                                       p["umap.tsv"], p["pcs.tsv"], outs, "individual")
    load_script("find_markers").find(p["cells.h5ad"], p["markers.tsv"], n_genes=10)
    truth = {"cells": p["cells.h5ad"], "individuals": p["individuals.tsv"],
             "markers": p["markers.tsv"], "truth_individuals": cohort["truth_individuals"],
             "truth_cells": cohort["truth_cells"], "known_markers": cohort["known_markers"],
             "leiden": p["leiden.tsv"]}
    load_script("evaluate_demo").evaluate(truth, p["evaluation.tsv"], p["recovery.tsv"],
                                          {"min_ari_individuals": 0.9, "min_ari_cells": 0.8,
                                           "min_known_markers": 1})
    return d, p


def tsv(path):
    return pd.read_csv(path, sep="\t")


def test_matching_and_pcs(run):
    _, p = run
    assert (tsv(p["matching.tsv"])["status"] == "matched").all()
    pcs = tsv(p["pcs.tsv"])
    assert list(pcs.columns) == ["individual", "PC1", "PC2", "PC3"] and len(pcs) == 30
    eigen = tsv(p["eigen.tsv"])
    assert eigen["explained_variance_ratio"].is_monotonic_decreasing


def test_preprocessed_cells_keep_raw_counts(run, cohort):
    _, p = run
    pre = ad.read_h5ad(p["pre.h5ad"])
    raw = ad.read_h5ad(cohort["counts"])
    assert pre.obsm["X_pca"].shape == (pre.n_obs, 5)
    assert pre.n_obs < raw.n_obs  # QC removed the low-quality cells
    counts = pre.layers["counts"]
    assert np.array_equal(counts.data, np.round(counts.data))
    assert pre.X.max() < 20  # log-normalised


def test_fit_inputs_line_up(run):
    _, p = run
    with np.load(p["inputs.npz"]) as data:
        assert data["x"].shape == (30, 3)
        assert data["y"].shape[0] == data["group"].shape[0] == data["cells"].shape[0]
        assert data["group"].max() == 29
        individuals = data["individuals"][data["group"]]
        assert all(c.startswith(i + "_") for c, i in zip(data["cells"], individuals, strict=True))


def test_best_restart_kept(run):
    _, p = run
    restarts = tsv(p["restarts.tsv"])
    assert restarts["kept"].sum() == 1
    assert restarts.loc[restarts["kept"], "elbo"].iloc[0] == restarts["elbo"].max()
    best = NAM.load(p["best.npz"])
    assert np.isclose(best.elbo_, restarts["elbo"].max(), rtol=1e-14)
    traces = tsv(p["traces.tsv"])
    assert set(traces["seed"]) == {0, 1}
    last = traces.groupby("seed")["elbo"].last()
    assert np.allclose(last.to_numpy(), restarts.set_index("seed")["elbo"].loc[last.index])


def test_cells_h5ad(run):
    _, p = run
    cells = ad.read_h5ad(p["cells.h5ad"])
    assert {"nam_cell_cluster", "nam_cell_cluster_probability", "nam_individual_cluster"} <= set(
        cells.obs.columns)
    assert cells.obs["nam_cell_cluster"].astype(str).str.match(r"^C\d+$").all()
    proba = cells.obs["nam_cell_cluster_probability"]
    assert ((proba > 0) & (proba <= 1 + 1e-6)).all()
    assert cells.obsm["X_umap"].shape == (cells.n_obs, 2)
    assert cells.obsm["X_pca"].shape == (cells.n_obs, 5)
    assert "counts" in cells.layers


def test_individuals_and_composition(run):
    _, p = run
    ind = tsv(p["individuals.tsv"])
    assert list(ind.columns[:4]) == ["individual", "cluster", "probability", "n_cells"]
    prob = ind.filter(like="prob_I")
    assert prob.shape[1] == FIT["K"]
    assert np.allclose(prob.sum(axis=1), 1.0)
    assert {"PC1", "PC2", "PC3"} <= set(ind.columns)
    counts = tsv(p["counts.tsv"])
    assert counts.filter(like="C").sum(axis=1).tolist() == ind["n_cells"].tolist()
    by_cluster = tsv(p["by_cluster.tsv"])
    shares = by_cluster.drop(columns=["cluster", "n_individuals", "n_cells"])
    assert np.allclose(shares.sum(axis=1), 1.0)
    assert by_cluster["n_individuals"].sum() == 30


def test_markers_and_evaluation(run):
    _, p = run
    markers = tsv(p["markers.tsv"])
    assert list(markers.columns) == ["cluster", "rank", "gene", "score", "logfoldchange",
                                     "pval_adj"]
    assert markers.groupby("cluster").size().max() == 10
    evaluation = tsv(p["evaluation.tsv"])
    assert list(evaluation.columns) == ["metric", "value", "threshold", "pass"]
    values = evaluation.set_index("metric")["value"]
    assert values["ari_cells"] > 0.8  # six well-separated cell types
    assert values["ari_cells_leiden_0.5"] > 0.5  # Leiden on the same PCs, listed beside NAM
    assert values["n_cell_clusters_1pct_leiden_1.0"] >= values["n_cell_clusters_1pct_leiden_0.5"]
    leiden = tsv(p["leiden.tsv"])
    assert list(leiden.columns) == ["cell", "leiden_0.5", "leiden_1.0"]
    recovery = tsv(p["recovery.tsv"])
    tested = recovery[recovery["tested"]]
    assert (tested["n_known_found"] >= 1).all()
    assert values["min_known_markers_per_cluster"] == tested["n_known_found"].min()


def test_figures(run, tmp_path):
    d, p = run
    calls = {
        "plot_genotype_scree": (p["eigen.tsv"],),
        "plot_genotype_pcs": (p["individuals.tsv"], p["eigen.tsv"]),
        "plot_umap": (p["cells.h5ad"],),
        "plot_composition": (p["by_cluster.tsv"],),
        "plot_markers": (p["cells.h5ad"], p["markers.tsv"]),
        "plot_elbo_traces": (p["traces.tsv"], p["restarts.tsv"]),
    }
    for name, args in calls.items():
        png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
        load_script(name).plot(*args, png, pdf)
        assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF", name
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temp files


def test_logged_writes_log_and_exceptions(tmp_path):
    common = load_script("_common")
    log = tmp_path / "rule.log"
    with pytest.raises(ValueError, match="boom"):
        with common.logged(log):
            logging.getLogger("nam_core.test").info("started")
            raise ValueError("boom")
    text = log.read_text()
    assert "started" in text and "ValueError: boom" in text and "Traceback" in text


def test_demo_script_writes_every_file(tmp_path):
    paths = load_script("make_demo_cohort").make_demo(
        tmp_path / "demo" / "genotypes.bed", {**TINY, "n_individuals": 12, "n_snps": 300})
    for key in ("counts", "truth_individuals", "truth_cells", "known_markers"):
        assert paths[key].is_file()
    assert (tmp_path / "demo" / "genotypes.fam").read_text().count("\n") == 12


def test_evaluation_flags_a_failure(run, cohort, tmp_path):
    """Scrambled individual clusters fail the ARI threshold, and pass says so."""
    _, p = run
    individuals = tsv(p["individuals.tsv"])
    rng = np.random.default_rng(0)
    individuals["cluster"] = rng.permutation(["I1", "I2", "I3"] * 10)
    scrambled = tmp_path / "individuals.tsv"
    individuals.to_csv(scrambled, sep="\t", index=False)
    paths = {"cells": p["cells.h5ad"], "individuals": scrambled, "markers": p["markers.tsv"],
             "truth_individuals": cohort["truth_individuals"],
             "truth_cells": cohort["truth_cells"], "known_markers": cohort["known_markers"]}
    evaluation = load_script("evaluate_demo").evaluate(
        paths, tmp_path / "e.tsv", tmp_path / "r.tsv",
        {"min_ari_individuals": 0.9, "min_ari_cells": 0.8, "min_known_markers": 1},
    ).set_index("metric")
    assert evaluation.loc["ari_individuals", "value"] < 0.5
    assert not evaluation.loc["ari_individuals", "pass"]
    assert tsv(tmp_path / "e.tsv").set_index("metric").loc["ari_individuals", "pass"] in (
        False, "False")


@pytest.mark.parametrize("policy", ["keep", "drop"])
def test_individual_without_cells_after_qc(run, tmp_path, policy):
    """An individual whose cells all fail QC is kept (genotype only) or dropped, per policy."""
    _, p = run
    pre = ad.read_h5ad(p["pre.h5ad"])
    pre = pre[pre.obs["individual"].astype(str) != "IND0001"].copy()
    pre.write_h5ad(tmp_path / "pre.h5ad")
    inputs = load_script("assemble_fit_inputs").assemble(
        p["pcs.tsv"], tmp_path / "pre.h5ad", p["matching.tsv"], tmp_path / "inputs.npz",
        "individual", without_cells=policy)
    assert ("IND0001" in inputs["individuals"]) == (policy == "keep")
    assert len(inputs["individuals"]) == (30 if policy == "keep" else 29)
    model = load_script("fit_nam").fit(tmp_path / "inputs.npz", tmp_path / "fit.npz", 0,
                                       {**FIT, "max_iter": 200, "tol": 1e-6})
    assert model.rho_.shape[0] == len(inputs["individuals"])
