"""Each script's function on a tiny demo cohort, in the order of the workflow's DAG."""

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from nam_core import NAM
from nam_core.errors import NAMInputError
from nam_core.inputs.h5ad import annotate_matrix
from nam_core.results.tables import write_results

from .conftest import TINY, load_script

FIT = dict(K=6, L=10, init="kmeans", max_iter=200, tol=None, dtype="float64", device="cpu",
           alpha=None, beta=None, s=[1.0, 1.0], r=[1.0, 1.0], trunc_v="tsb", trunc_u="tsb",
           memory_budget_mb=16)
PREPROCESS = dict(min_genes=100, min_cells=3, min_counts=300, max_pct_mt=20.0, n_top_genes=300,
                  n_pcs=5, target_sum=1000.0)


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory):
    """Every script of the DAG, once; returns the folder and the paths written."""
    d = tmp_path_factory.mktemp("scripts")
    p = {name: d / name for name in (
        "matching.tsv", "pcs.tsv", "eigen.tsv", "pre.h5ad", "umap.tsv", "inputs.npz",
        "best.npz", "restarts.tsv", "traces.tsv", "annotations.h5ad", "cells.h5ad", "individuals.tsv",
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
    load_script("assemble_fit_inputs").assemble(
        path_to_pcs=p["pcs.tsv"], path_to_cells=p["pre.h5ad"], path_to_matching=p["matching.tsv"],
        path_to_inputs=p["inputs.npz"], individual_column="individual")
    fits = [d / f"seed{s}.npz" for s in (0, 1)]
    for seed, path in zip((0, 1), fits, strict=True):
        load_script("fit_nam").fit(p["inputs.npz"], path, seed, FIT)
    load_script("select_best_fit").select(fits, p["best.npz"], p["restarts.tsv"], p["traces.tsv"])
    write_results(path_to_fit=p["best.npz"], path_to_inputs=p["inputs.npz"],
                  path_to_cells=p["pre.h5ad"], path_to_umap=p["umap.tsv"],
                  path_to_pcs=p["pcs.tsv"], path_to_cells_out=p["annotations.h5ad"],
                  path_to_individuals=p["individuals.tsv"], path_to_counts=p["counts.tsv"],
                  path_to_proportions=p["proportions.tsv"], path_to_by_cluster=p["by_cluster.tsv"])
    annotate_matrix(p["pre.h5ad"], ad.read_h5ad(p["annotations.h5ad"]), p["cells.h5ad"])  # unnamed
    load_script("find_markers").find(p["annotations.h5ad"], p["pre.h5ad"], p["markers.tsv"],
                                     n_genes=10)
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
    assert np.isclose(best.elbo_, restarts["elbo"].max(), rtol=1e-9)  # tables: 10 digits
    traces = tsv(p["traces.tsv"])
    assert set(traces["seed"]) == {0, 1}
    last = traces.groupby("seed")["elbo"].last()
    assert np.allclose(last.to_numpy(), restarts.set_index("seed")["elbo"].loc[last.index])


def test_annotations_hold_no_matrix_and_the_cells_file_adds_them_to_one(run):
    d, p = run
    annotations = ad.read_h5ad(p["annotations.h5ad"])
    assert annotations.X is None and not annotations.layers
    assert p["annotations.h5ad"].stat().st_size < p["pre.h5ad"].stat().st_size / 2
    cells = ad.read_h5ad(p["cells.h5ad"])
    pd.testing.assert_frame_equal(cells.obs, annotations.obs)
    assert set(cells.obsm) == set(annotations.obsm) and set(cells.uns) >= set(annotations.uns)
    assert (cells.X != ad.read_h5ad(p["pre.h5ad"]).X).nnz == 0
    with pytest.raises(NAMInputError, match="list different cells"):
        annotate_matrix(p["pre.h5ad"], annotations[::-1].copy(), d / "reversed.h5ad",
                        source="reversed annotations")
    assert not (d / "reversed.h5ad").exists()


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
    prob = ind.filter(like="prob_")
    occupied = sorted(set(ind["cluster"]), key=lambda n: int(n[1:]))
    assert list(prob.columns) == [f"prob_{c}" for c in occupied] + ["prob_other"]
    assert len(occupied) < FIT["K"]  # the truncation's empty clusters are left out
    assert np.allclose(prob.sum(axis=1), 1.0) and (prob["prob_other"] >= 0).all()
    picked = prob.to_numpy()[np.arange(len(ind)), [occupied.index(c) for c in ind["cluster"]]]
    assert np.array_equal(picked, ind["probability"].to_numpy())
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
        path_to_pcs=p["pcs.tsv"], path_to_cells=tmp_path / "pre.h5ad",
        path_to_matching=p["matching.tsv"], path_to_inputs=tmp_path / "inputs.npz",
        individual_column="individual", individuals_without_cells=policy)
    assert ("IND0001" in inputs.individuals) == (policy == "keep")
    assert len(inputs.individuals) == (30 if policy == "keep" else 29)
    model = load_script("fit_nam").fit(tmp_path / "inputs.npz", tmp_path / "fit.npz", 0,
                                       {**FIT, "max_iter": 200, "tol": 1e-6})
    assert model.rho_.shape[0] == len(inputs.individuals)


def test_composition_scripts(run, cohort, tmp_path):
    """Cell types, names, named cells, permutation, composition tables and figures on the tiny fit."""
    d, p = run
    groups = tmp_path / "cell_type_groups.tsv"
    load_script("group_cell_atoms").group(p["annotations.h5ad"], groups, "dip", max_cells=2000,
                                          seed=0)
    atom_to_group = tsv(groups).set_index("atom")["group"]
    atoms = ad.read_h5ad(p["cells.h5ad"], backed="r").obs["nam_cell_cluster"].astype(str)
    assert set(atom_to_group.index) == set(atoms)
    assert atom_to_group.str.match(r"^T\d+$").all()
    names = load_script("name_cell_clusters").name(
        p["annotations.h5ad"], p["pre.h5ad"], load_script("_common").ROOT / "config" / "cell_type_markers.tsv",
        tmp_path / "names.tsv", tmp_path / "scores.tsv", min_score=0.7, min_markers=3,
        path_groups=groups, path_type_names=tmp_path / "type_names.tsv")
    assert set(names.columns) >= {"cluster", "cell_type", "score", "share", "assigned"}
    type_names = tsv(tmp_path / "type_names.tsv")
    assert set(type_names["group"]) == set(atom_to_group)
    load_script("add_cell_type_names").add(p["annotations.h5ad"], p["pre.h5ad"],
                                           tmp_path / "names.tsv",
                                           tmp_path / "named.h5ad", groups,
                                           tmp_path / "type_names.tsv")
    named = ad.read_h5ad(tmp_path / "named.h5ad")
    assert {"nam_cell_type", "nam_cell_type_score", "nam_cell_group"} <= set(named.obs.columns)
    obs = named.obs.astype({"nam_cell_cluster": str, "nam_cell_group": str})
    assert (obs["nam_cell_group"] == obs["nam_cell_cluster"].map(atom_to_group)).all()
    by_group = obs.groupby("nam_cell_group")["nam_cell_type"].nunique()
    assert (by_group == 1).all()
    perm = load_script("check_marker_strength").check(
        tmp_path / "named.h5ad", tmp_path / "perm.tsv", "individual",
        {"n_top": 5, "n_permutations": 49, "seed": 0, "max_cells": 2000}, "nam_cell_group")
    assert (perm["p_value"] > 0).all() and (perm["n_permutations"] == 49).all()
    assert set(perm["cluster"]) <= set(atom_to_group)
    outs = {f"{k}{s}": tmp_path / f"{k}{s}.tsv" for s in ("", "_atoms")
            for k in ("groups", "posterior", "differences", "propeller", "genotype")}
    outs.update({k: tmp_path / f"{k}.tsv" for k in ("genotype_omnibus", "traits", "donors",
                                                    "donor_shares_long")})
    donors = tsv(p["individuals.tsv"])["individual"]
    covariates = tmp_path / "covariates.tsv"
    pd.DataFrame({"individual": donors, "age": np.linspace(20, 80, len(donors)),
                  "pool": np.resize(["P1", "P2", "P3"], len(donors))}).to_csv(
        covariates, sep="\t", index=False)
    tables = load_script("summarise_composition").summarise(
        p["best.npz"], p["counts.tsv"], p["individuals.tsv"], p["inputs.npz"],
        tmp_path / "names.tsv", outs,
        {"n_draws": 500, "seed": 0, "null_log_ratio": 0.1, "transform": "logit",
         "covariate_types": {"age": "numeric", "pool": "categorical"},
         "lineages": {"CD4 T": "T", "CD8 T": "T"}},
        groups, tmp_path / "type_names.tsv", covariates, f"{cohort['bfile']}.fam")
    assert {"cell_type", "prob_null", "fdr", "lower", "upper"} <= set(tables["differences"].columns)
    _composition_of_joined_clusters(p, tmp_path, groups)
    assert {"age", "pool[P2]", "pool[P3]", "all"} <= set(tsv(outs["genotype"])["term"])
    assert (tsv(outs["propeller"])["adjusted_for"] == "age,pool").all()
    assert set(tsv(outs["genotype_omnibus"])["term"]) == set(tsv(outs["genotype"])["term"])
    traits = tsv(outs["traits"])
    assert list(traits.columns[:2]) == ["FID", "IID"] and len(traits) == len(donors)
    assert {"age", "pool", "nam_cluster", "PC1", "n_T1", "share_T1"} <= set(tsv(outs["donors"]))
    assert len(tsv(outs["donor_shares_long"])) == len(donors) * atom_to_group.nunique()
    for suffix, labels in (("", set(atom_to_group)), ("_atoms", set(atom_to_group.index))):
        posterior = tables[f"posterior{suffix}"]
        assert np.allclose(posterior.groupby("individual_cluster")["mean"].sum(), 1.0)
        assert set(posterior["cell_cluster"]) == labels
    # a type's posterior share is the sum of its atoms' (same seeded draws)
    atoms_post = tables["posterior_atoms"].assign(
        group=lambda t: t["cell_cluster"].map(atom_to_group))
    summed = atoms_post.groupby(["individual_cluster", "group"])["mean"].sum()
    by_type = tables["posterior"].set_index(["individual_cluster", "cell_cluster"])["mean"]
    assert np.allclose(summed.loc[by_type.index].to_numpy(), by_type.to_numpy())
    load_script("summarise_partition").summarise(p["best.npz"], p["inputs.npz"],
                                                 tmp_path / "cocl.tsv", tmp_path / "alt.tsv", 3.0)
    cocl = pd.read_csv(tmp_path / "cocl.tsv", sep="\t", index_col=0)
    assert cocl.shape == (30, 30) and np.allclose(cocl.to_numpy(), cocl.to_numpy().T)
    alt = tsv(tmp_path / "alt.tsv")
    assert list(alt.columns) == ["search", "keep", "drop", "n_clusters", "elbo", "gap_nats",
                                 "near_tie"]
    figs = {f"{k}_{e}": tmp_path / f"{k}.{e}" for k in ("bars", "forest", "cocluster")
            for e in ("png", "pdf")}
    paths = {"names": tmp_path / "type_names.tsv", "coclustering": tmp_path / "cocl.tsv",
             "individuals": p["individuals.tsv"], **{k: outs[k] for k in ("posterior",
                                                                         "differences",
                                                                         "propeller")}}
    assert tsv(p["individuals.tsv"])["cluster"].nunique() >= 2  # else nothing to compare
    assert not tables["differences"].empty
    load_script("plot_composition_figures").plot(paths, figs)
    load_script("plot_umap_cell_types").plot(tmp_path / "named.h5ad", tmp_path / "names.tsv",
                                             tmp_path / "umap.png", tmp_path / "umap.pdf",
                                             tmp_path / "type_names.tsv")
    load_script("plot_composition").plot(p["by_cluster.tsv"], tmp_path / "heat.png",
                                         tmp_path / "heat.pdf", tmp_path / "type_names.tsv",
                                         groups)
    type_markers = load_script("find_markers").find(tmp_path / "named.h5ad", p["pre.h5ad"],
                                                    tmp_path / "type_markers.tsv", n_genes=5,
                                                    groupby="nam_cell_group")
    assert set(type_markers["cluster"]) == set(atom_to_group)
    load_script("plot_markers").plot(tmp_path / "named.h5ad", tmp_path / "type_markers.tsv",
                                     tmp_path / "dot.png", tmp_path / "dot.pdf", 2,
                                     tmp_path / "type_names.tsv")
    load_script("plot_markers").plot(tmp_path / "named.h5ad", p["markers.tsv"],
                                     tmp_path / "dot_atoms.png", tmp_path / "dot_atoms.pdf", 2,
                                     tmp_path / "names.tsv", max_cells_per_cluster=20)
    load_script("group_individual_clusters").group(
        p["individuals.tsv"], p["counts.tsv"], groups, tmp_path / "ig.tsv",
        tmp_path / "ig_individuals.tsv", min_genotype_error=0.1, max_share_difference=0.05)
    clusters = tsv(p["individuals.tsv"])["cluster"]
    assert set(tsv(tmp_path / "ig.tsv")["cluster"]) == set(clusters)
    assert tsv(tmp_path / "ig_individuals.tsv")["cluster"].tolist() == clusters.tolist()
    paths = {"cells": tmp_path / "named.h5ad", "individuals": p["individuals.tsv"],
             "individual_groups": tmp_path / "ig_individuals.tsv",
             "markers": p["markers.tsv"], **{k: cohort[k] for k in (
                 "truth_individuals", "truth_cells", "known_markers")}}
    evaluation = load_script("evaluate_demo").evaluate(
        paths, tmp_path / "e.tsv", tmp_path / "r.tsv",
        {"min_ari_individuals": 0.9, "min_ari_cells": 0.8, "min_known_markers": 1},
    ).set_index("metric")["value"]
    assert evaluation["n_individual_groups"] <= evaluation["n_individual_clusters"]
    assert -1 <= evaluation["ari_individual_groups"] <= 1
    assert evaluation["n_nam_cell_types"] == atom_to_group.nunique()
    assert 0 < evaluation["ari_cell_types"] <= 1 and 0 < evaluation["ari_cells"] <= 1
    for path in [*figs.values(), tmp_path / "umap.png", tmp_path / "heat.png",
                 tmp_path / "dot.png"]:
        assert path.stat().st_size > 1000, path


def _composition_of_joined_clusters(p, tmp_path, cell_type_groups):
    """Two clusters joined into one individual group: the tests and figures compare the groups."""
    clusters = sorted(tsv(p["individuals.tsv"])["cluster"].unique(), key=lambda c: int(c[1:]))
    joined = "+".join(clusters[:2])
    groups_file = tmp_path / "joined_groups.tsv"
    pd.DataFrame({"cluster": clusters, "group": [joined, joined, *clusters[2:]]}).to_csv(
        groups_file, sep="\t", index=False)
    outs = {k: tmp_path / f"joined_{k}.tsv" for k in ("groups", "posterior", "differences",
                                                     "propeller")}
    load_script("summarise_composition").summarise(
        p["best.npz"], p["counts.tsv"], p["individuals.tsv"], p["inputs.npz"],
        tmp_path / "names.tsv", outs, {"n_draws": 200, "seed": 0, "null_log_ratio": 0.1},
        cell_type_groups, tmp_path / "type_names.tsv", path_individual_groups=groups_file)
    tested = tsv(outs["groups"])
    assert set(tested["cluster"]) <= {joined, *clusters[2:]} and joined in set(tested["cluster"])
    assert set(tested["nam_cluster"]) == set(clusters)  # the fit's own clusters are kept
    assert tsv(outs["differences"])["contrast"].str.startswith(f"{joined} vs").any()
    figs = {f"{k}_{e}": tmp_path / f"joined_{k}.{e}" for k in ("bars", "forest", "cocluster")
            for e in ("png", "pdf")}
    load_script("summarise_partition").summarise(p["best.npz"], p["inputs.npz"],
                                                 tmp_path / "jcocl.tsv", tmp_path / "jalt.tsv", 3.0)
    load_script("plot_composition_figures").plot(
        {"names": tmp_path / "type_names.tsv", "coclustering": tmp_path / "jcocl.tsv",
         "individuals": p["individuals.tsv"], **{k: outs[k] for k in ("posterior", "differences",
                                                                      "propeller")}}, figs)
    assert figs["forest_png"].stat().st_size > 1000


def test_ablation_scripts(run, tmp_path):
    _, p = run
    settings = dict(FIT)
    for name in ("cam", "dpmix_y"):
        load_script("fit_ablation").fit(p["inputs.npz"], tmp_path / f"{name}.npz", name,
                                        settings, seed=0)
    table = load_script("compare_ablation").compare(
        p["best.npz"], tmp_path / "cam.npz", tmp_path / "dpmix_y.npz", p["inputs.npz"],
        tmp_path / "comparison.tsv").set_index("metric")["value"]
    assert 0.5 < table["ari_cells_nam_cam"] <= 1.0 and 0.5 < table["ari_cells_nam_dpmix_y"] <= 1
    assert 0.0 <= table["genotype_homogeneity_cam"] <= 1.0
    assert table["genotype_homogeneity_nam"] >= table["genotype_homogeneity_cam"] - 0.05
