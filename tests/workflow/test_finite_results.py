"""Every output of the small demo run is scanned: no infinity anywhere, and NaN only where its
column says what NaN means (docs/troubleshooting.md, "NaN and infinity in outputs")."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

# Columns where NaN (an empty field) has a meaning, and tables whose every column may hold it
NAN_COLUMNS = {"threshold", "prop_a", "prop_b", "estimate", "statistic", "p_value", "fdr",
               "value", "logfoldchange", "pval_adj", "score", "second_score", "margin",
               "joined_with", "second_type", "beta", "se", "t", "p", "r2", "adjusted_for"}
NAN_TABLES = {"scores.tsv", "type_scores.tsv", "proportions_per_individual.tsv",
              "by_individual_cluster.tsv", "donors.tsv", "marker_recovery.tsv",
              "traits.tsv", "donor_shares_long.tsv"}


def result_files(results, suffix):
    return [p for p in sorted(results.rglob(f"*{suffix}"))
            if not {"benchmarks", "logs", "demo_cohort"} & set(p.relative_to(results).parts)]


def test_no_table_holds_infinity_or_unexplained_nan(small_run):
    tables = result_files(small_run["results"], ".tsv")
    assert len(tables) > 20
    problems = []
    for path in tables:
        df = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
        for name in df.select_dtypes("number").columns:
            values = df[name].to_numpy(dtype=float)
            if np.isinf(values).any():
                problems.append(f"{path.name}:{name} infinite")
            if (np.isnan(values).any() and name not in NAN_COLUMNS
                    and path.name not in NAN_TABLES):
                problems.append(f"{path.name}:{name} NaN")
    assert not problems, problems


def test_no_saved_array_or_cell_annotation_is_non_finite(small_run):
    arrays = result_files(small_run["results"], ".npz")
    assert any(p.name == "best.npz" for p in arrays)
    for path in arrays:
        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                if data[name].dtype.kind in "fc":
                    assert np.isfinite(data[name]).all(), f"{path.name}:{name}"
    cells = ad.read_h5ad(small_run["results"] / "cells.h5ad", backed="r")
    for name in ("X_pca", "X_umap"):
        assert np.isfinite(np.asarray(cells.obsm[name])).all(), name
    for name in cells.obs.select_dtypes("number").columns:
        assert np.isfinite(cells.obs[name].to_numpy(dtype=float)).all(), name
