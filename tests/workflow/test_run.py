"""Real runs of the workflow: the whole DAG on a small demo, reruns, the report, bad input."""

import os
import shutil
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

from .conftest import ROOT, SMALL_CONFIG, output_of, planned_jobs, snakemake

pytestmark = pytest.mark.slow

FIGURES = ("genotype_scree", "genotype_pcs", "umap_cell_clusters", "composition_heatmap",
           "marker_dotplot", "elbo_traces", "umap_cell_types", "composition_posterior",
           "composition_differences", "coclustering")


def tsv(path):
    return pd.read_csv(path, sep="\t")


def assert_evaluation_passes(path):
    evaluation = tsv(path).set_index("metric")
    thresholded = evaluation[evaluation["threshold"].notna()]
    assert set(thresholded.index) == {"ari_individuals", "ari_individual_groups", "ari_cells",
                                      "ari_cell_types", "min_known_markers_per_cluster"}
    assert (thresholded["value"] >= thresholded["threshold"]).all(), evaluation
    assert thresholded["pass"].astype(str).eq("True").all(), evaluation
    return evaluation


def test_small_demo_meets_the_thresholds(small_run):
    evaluation = assert_evaluation_passes(small_run["results"] / "evaluation.tsv")
    assert evaluation.loc["ari_individuals", "threshold"] == 0.9
    assert evaluation.loc["ari_cells", "threshold"] == 0.8
    for name in ("ari_cells_leiden_0.5", "ari_cells_leiden_1.0", "n_cell_clusters_1pct_leiden_0.5",
                 "n_cell_clusters_1pct_leiden_1.0", "n_cell_clusters_1pct"):
        assert np.isfinite(evaluation.loc[name, "value"]), name  # Leiden beside NAM
    recovery = tsv(small_run["results"] / "marker_recovery.tsv")
    assert (recovery.loc[recovery["tested"], "n_known_found"] >= 1).all()


def test_outputs(small_run):
    res = small_run["results"]
    cells = ad.read_h5ad(res / "cells.h5ad", backed="r")
    assert {"individual", "nam_cell_cluster", "nam_cell_cluster_probability",
            "nam_individual_cluster"} <= set(cells.obs.columns)
    assert {"X_pca", "X_umap"} <= set(cells.obsm.keys()) and "counts" in cells.layers
    individuals = tsv(res / "individuals.tsv")
    assert list(individuals.columns[:4]) == ["individual", "cluster", "probability", "n_cells"]
    assert individuals["n_cells"].sum() == cells.n_obs
    assert {"PC1", "PC5", "prob_I1", "prob_other"} <= set(individuals.columns)
    # one probability column per occupied cluster, not one per cluster of the truncation K
    assert individuals.filter(like="prob_I").shape[1] == individuals["cluster"].nunique()
    markers = tsv(res / "markers.tsv")
    assert set(markers["cluster"]) <= set(cells.obs["nam_cell_cluster"].astype(str))
    for name in ("cells_per_individual", "proportions_per_individual", "by_individual_cluster"):
        assert len(tsv(res / "composition" / f"{name}.tsv")) > 0
    for name in FIGURES:
        png, pdf = res / "figures" / f"{name}.png", res / "figures" / f"{name}.pdf"
        assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
    restarts = tsv(res / "fit" / "restarts.tsv")
    assert list(restarts["seed"]) == [0, 1, 2] and restarts["kept"].sum() == 1
    assert not [p for p in res.rglob(".*") if p.is_file()], "temporary files left behind"


def test_cell_types_group_atoms_and_leave_the_fit_alone(small_run):
    """cells.h5ad: nam_cell_group maps each atom to one type; regrouping reruns nothing of fit/."""
    res = small_run["results"]
    cells = ad.read_h5ad(res / "cells.h5ad", backed="r")
    groups = tsv(res / "cell_types" / "groups.tsv")
    assert {"atom", "group", "n_cells", "statistic", "value", "threshold"} <= set(groups.columns)
    obs = cells.obs.astype({"nam_cell_cluster": str, "nam_cell_group": str})
    assert (obs["nam_cell_group"] == obs["nam_cell_cluster"].map(
        groups.set_index("atom")["group"])).all()
    assert (obs.groupby("nam_cell_group")["nam_cell_type"].nunique() == 1).all()
    names = tsv(res / "cell_types" / "type_names.tsv")
    assert set(names["group"]) == set(groups["group"])
    assert set(tsv(res / "composition" / "posterior.tsv")["cell_cluster"]) <= set(groups["group"])
    atoms = tsv(res / "composition" / "posterior_atoms.tsv")
    assert set(atoms["cell_cluster"]) <= set(groups["atom"])
    substates = tsv(res / "cell_types" / "atoms.tsv")
    assert sorted(substates["atom"]) == sorted(groups["atom"])
    assert (substates.groupby("group")["share_of_type"].sum() - 1).abs().max() < 1e-3
    proc = snakemake(small_run["dir"], "-n", "--cores", 2, "--configfile", SMALL_CONFIG,
                     "--forcerun", "group_cell_atoms")
    planned = planned_jobs(proc)
    assert planned.get("group_cell_atoms") == 1, output_of(proc)
    fit_rules = {"assemble_fit_inputs", "fit_nam", "select_best_fit", "refine_fit",
                 "write_results"}
    assert not fit_rules & set(planned), planned  # the grouping runs after the fit


def test_composition_outputs_and_demo_checks(small_run):
    """Names in cells.h5ad, the composition tables, and the demo checks."""
    res = small_run["results"]
    cells = ad.read_h5ad(res / "cells.h5ad", backed="r")
    assert {"nam_cell_type", "nam_cell_type_score"} <= set(cells.obs.columns)
    check = tsv(res / "composition" / "demo_check.tsv").set_index("metric")
    thresholded = check[check["threshold"].notna()]
    assert (thresholded["value"] >= thresholded["threshold"]).all(), check
    assert check.loc["n_true_differences", "value"] >= 5
    differences = tsv(res / "composition" / "differences.tsv")
    assert {"effect", "lower", "upper", "log_ratio", "prob_null", "fdr",
            "cell_type"} <= set(differences.columns)
    assert len(tsv(res / "composition" / "propeller.tsv")) > 0
    mantel = tsv(res / "composition" / "mantel.tsv")
    assert list(mantel["method"]) == ["pearson", "spearman"]
    assert mantel["p"].between(0.001, 1).all() and (mantel["n_permutations"] == 999).all()
    permuted = tsv(res / "composition" / "propeller_permutation.tsv")
    anova = tsv(res / "composition" / "propeller.tsv").query("contrast == 'all'")
    assert np.allclose(permuted["statistic"], anova["statistic"])  # same F, permutation p
    assert permuted["p_perm"].between(0.001, 1).all()
    posterior = tsv(res / "composition" / "posterior.tsv")
    assert (posterior["lower"] <= posterior["mean"]).all()
    assert list(tsv(res / "fit" / "alternatives.tsv").columns)[-2:] == ["gap_nats", "near_tie"]
    n = cells.obs["individual"].nunique()
    assert pd.read_csv(res / "fit" / "coclustering.tsv", sep="\t", index_col=0).shape == (n, n)
    genotype = tsv(res / "composition" / "genotype_association.tsv")
    assert {"trait", "term", "beta", "se", "t", "p", "fdr", "n", "r2"} <= set(genotype.columns)
    assert set(tsv(res / "composition" / "genotype_omnibus.tsv")["term"]) == set(genotype["term"])
    traits = tsv(res / "composition" / "traits.tsv")
    assert list(traits.columns[:2]) == ["FID", "IID"] and len(traits) == n
    assert len(tsv(res / "composition" / "donors.tsv")) == n


def markdown_table(text, header_start):
    """Rows (lists of cells) of the Markdown table whose header line starts with header_start."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_summary_against_the_truth_and_manifest(small_run):
    import hashlib
    import json

    res = small_run["results"]
    text = (res / "summary.md").read_text()
    truth = tsv(res / "demo_cohort" / "truth_individuals.tsv")
    individuals = tsv(res / "individuals.tsv")
    clusters = markdown_table(text, "| cluster | individuals")
    # as many individual clusters as ancestry groups, of the sizes in individuals.tsv
    assert len(clusters) == truth["ancestry"].nunique()
    assert {row[0]: int(row[1]) for row in clusters} == \
        individuals["cluster"].value_counts().to_dict()
    assert f"**{len(individuals)} individuals**" in text
    # the named cell types are the demo's true types, with the cell counts of type_names.tsv
    types = markdown_table(text, "| type | name")
    true_types = set(tsv(res / "demo_cohort" / "truth_cells.tsv")["cell_type"])
    assert {row[1] for row in types} == true_types
    type_names = tsv(res / "cell_types" / "type_names.tsv")
    assert sum(int(row[2].replace(",", "")) for row in types) == type_names["n_cells"].sum()
    # the called differences, as many as differences.tsv calls
    differences = tsv(res / "composition" / "differences.tsv")
    n_called = int(differences["called"].sum())
    assert f"{n_called} of {len(differences)} contrasts" in text
    assert "| `evaluation.tsv` | ari_individuals |" in text and "**fail**" not in text
    manifest = json.loads((res / "manifest.json").read_text())
    listed = {entry["path"]: entry["sha256"] for entry in manifest["outputs"]}
    on_disk = {str(p.relative_to(res)) for p in res.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"manifest.json", "logs/summarise_run.log",
                                     "benchmarks/summarise_run.tsv"}
    assert listed["summary.md"] == hashlib.sha256((res / "summary.md").read_bytes()).hexdigest()
    assert manifest["config"]["cohort"] == "small" and manifest["versions"]["snakemake"]
    assert {entry["name"] for entry in manifest["inputs"]} >= {"counts", "genotypes_bed"}


def test_every_rule_logs_and_benchmarks(small_run):
    res = small_run["results"]
    logs = sorted(p.relative_to(res / "logs") for p in (res / "logs").rglob("*.log"))
    assert len(logs) == 36  # 34 rules, fit_nam once per seed (3 seeds)
    for log in logs:
        assert (res / "logs" / log).stat().st_size > 0, f"{log} is empty"
    assert "sweep" in (res / "logs" / "fit_nam" / "seed0.log").read_text()
    assert "matched 100 individuals" in (res / "logs" / "match_individuals.log").read_text()
    benchmarks = sorted(p.relative_to(res / "benchmarks").with_suffix(".log")
                        for p in (res / "benchmarks").rglob("*.tsv"))
    assert benchmarks == logs  # every job's seconds and peak memory (bench_scale reads them)


def test_second_run_does_nothing(small_run):
    proc = snakemake(small_run["dir"], "-n", "--cores", 2, "--configfile", SMALL_CONFIG)
    assert proc.returncode == 0, output_of(proc)
    assert planned_jobs(proc) == {} and "Nothing to be done" in output_of(proc)


def test_deleting_an_output_reruns_only_what_depends_on_it(small_run):
    res = small_run["results"]
    (res / "figures" / "elbo_traces.pdf").unlink()
    proc = snakemake(small_run["dir"], "-n", "--cores", 2, "--configfile", SMALL_CONFIG)
    assert planned_jobs(proc) == {"plot_elbo_traces": 1, "summarise_run": 1, "all": 1}, \
        output_of(proc)

    (res / "markers.tsv").unlink()
    proc = snakemake(small_run["dir"], "--cores", 2, "--configfile", SMALL_CONFIG)
    assert proc.returncode == 0, output_of(proc)
    ran = {line.split("Rule: ")[1].rstrip(")") for line in output_of(proc).splitlines()
           if "Finished jobid" in line and "Rule: " in line}
    # the dot plot shows the types; the summary and manifest list every output; atoms.tsv
    # lists each atom's top markers
    assert ran == {"find_markers", "evaluate_demo", "describe_cell_atoms", "plot_elbo_traces",
                   "summarise_run", "all"}
    proc = snakemake(small_run["dir"], "-n", "--cores", 2, "--configfile", SMALL_CONFIG)
    assert planned_jobs(proc) == {}, output_of(proc)


@pytest.mark.parametrize("ranks", [1, 2])
def test_coarse_to_fine_restarts_then_refine_on_all_cells(small_run, tmp_path, ranks):
    """fit.coarse_fraction: every seed's restart sees the same subsample, refine_fit all cells.

    With fit.ranks 2 every fit job runs over two torch.distributed ranks.
    """
    from nam_core import NAM

    shutil.copytree(small_run["results"], tmp_path / "results" / "small",
                    ignore=shutil.ignore_patterns("fit", "individuals.tsv"))
    config = yaml.safe_load(SMALL_CONFIG.read_text())
    config["fit"] |= {"coarse_fraction": 0.3, "coarse_min_cells": 5, "ranks": ranks}
    (tmp_path / "c2f.yaml").write_text(yaml.safe_dump(config))
    shutil.copytree(small_run["results"] / "fit", tmp_path / "all_cells_fit")
    (tmp_path / "results" / "small" / "fit").mkdir()
    shutil.copy(tmp_path / "all_cells_fit" / "inputs.npz", tmp_path / "results" / "small" / "fit")
    proc = snakemake(tmp_path, "results/small/fit/best.npz", "--cores", 2, "--configfile",
                     tmp_path / "c2f.yaml")
    assert proc.returncode == 0, output_of(proc)[-5000:]
    fit = tmp_path / "results" / "small" / "fit"
    restarts = [NAM.load(fit / "restarts" / f"seed{s}.npz") for s in config["fit"]["seeds"]]
    n_all = NAM.load(tmp_path / "all_cells_fit" / "best.npz").cell_labels_.size
    n_coarse = {m.cell_labels_.size for m in restarts}
    assert len(n_coarse) == 1 and 0.3 * n_all <= n_coarse.pop() < 0.5 * n_all
    best = NAM.load(fit / "best.npz")
    assert best.cell_labels_.size == n_all
    kept = max(restarts, key=lambda m: m.elbo_)
    assert best.seed_ == kept.seed_ and NAM.load(fit / "best_coarse.npz").elbo_ == kept.elbo_
    logs = tmp_path / "results" / "small" / "logs"
    # atom merges run once, on the chosen restart, before the refinement
    assert not any(m.merge_atoms for m in restarts)
    assert "atom merges on the chosen restart" in (logs / "refine_fit.log").read_text()
    for log in [logs / "refine_fit.log", *(logs / "fit_nam").glob("seed*.log")]:
        assert "finished" in log.read_text()
        assert ("fit over 2 ranks" in log.read_text()) == (ranks == 2)


def test_report_builds(small_run, tmp_path):
    report = small_run["dir"] / "report.html"
    proc = snakemake(small_run["dir"], "--configfile", SMALL_CONFIG, "--report", report)
    assert proc.returncode == 0, output_of(proc)
    html = report.read_text(errors="replace")
    for name in FIGURES:
        assert f"{name}.png" in html, name
    assert "evaluation.tsv" in html and "NAM analysis of cohort" in html


@pytest.fixture
def cohort_copy(small_run, tmp_path):
    """The small run's demo files as a "real" cohort (demo disabled), in a fresh folder."""
    data = tmp_path / "data"
    shutil.copytree(small_run["results"] / "demo_cohort", data)

    def config(**inputs):
        cfg = yaml.safe_load(SMALL_CONFIG.read_text())
        cfg["cohort"] = "bad"
        cfg["demo"] = {"enabled": False}
        cfg["inputs"] = {"bfile": str(data / "genotypes"), "counts": str(data / "counts.h5ad"),
                         **inputs}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    return data, config


def assert_failed_cleanly(workdir, proc, *messages):
    text = output_of(proc)
    assert proc.returncode != 0
    for message in messages:
        assert message in text, text[-3000:]
    assert "Error in rule match_individuals" in text  # the first job, before any other work
    res = workdir / "results" / "bad"
    left = [p for p in res.rglob("*") if p.is_file() and "logs" not in p.parts]
    assert left == [], f"outputs left behind: {left}"
    log = (res / "logs" / "match_individuals.log").read_text()
    assert "NAMInputError" in log


def test_truncated_bed_fails_early_through_snakemake(cohort_copy, tmp_path):
    data, config = cohort_copy
    bed = data / "genotypes.bed"
    bed.write_bytes(bed.read_bytes()[: bed.stat().st_size // 2])
    proc = snakemake(tmp_path, "--cores", 2, "--configfile", config(), timeout=300)
    assert_failed_cleanly(tmp_path, proc, str(bed), "bytes, but")


def test_wrong_individual_column_fails_early_through_snakemake(cohort_copy, tmp_path):
    data, config = cohort_copy
    proc = snakemake(tmp_path, "--cores", 2, "--configfile", config(individual_column="donor"),
                     timeout=300)
    assert_failed_cleanly(tmp_path, proc, "counts.h5ad", "no column 'donor'")


@pytest.mark.skipif(os.environ.get("NAM_TEST_DEFAULT_DEMO") != "1",
                    reason="set NAM_TEST_DEFAULT_DEMO=1 to run the default demo (about 3 min)")
def test_default_demo_end_to_end(tmp_path):
    """The default config from scratch: under 10 minutes, and the demo's thresholds pass."""
    start = time.perf_counter()
    proc = snakemake(tmp_path, "--cores", 2, "--configfile", ROOT / "config/config.yaml",
                     timeout=900)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, output_of(proc)[-5000:]
    assert seconds < 600, f"default demo took {seconds:.0f} s"
    evaluation = assert_evaluation_passes(tmp_path / "results" / "demo" / "evaluation.tsv")
    print(f"default demo: {seconds:.0f} s\n{evaluation}")
    assert np.isfinite(evaluation["value"]).all()
