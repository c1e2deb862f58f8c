"""The genotype association of cell-type shares, as a cell-type-share GWAS models them.

Per trait (a cell type's transformed share of all cells, or of its lineage), least squares on
the genotype PCs and the donor covariates (:func:`genotype_association`), and an omnibus test
of each term across traits (:func:`association_omnibus`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...errors import NAMInputError
from .adjust import Covariates, covariate_columns
from .counts import MIN_MEAN_CELLS, counts_with_cells, tested_cell_clusters
from .frequentist import transform_proportions
from .glm import bh, cauchy_combination, nested_f_test, ols_glm

__all__ = ["ALL_CELLS", "JOINT_PCS", "association_omnibus", "genotype_association",
           "lineage_groups", "share_traits"]

logger = logging.getLogger(__name__)

#: share_of value of a type's share of all the donor's cells.
ALL_CELLS = "all_cells"
#: term of the joint F-test of every genotype PC given the covariates (beta and se are NaN);
#: named as before covariates were adjusted for, so readers of the table keep working.
JOINT_PCS = "all"


def lineage_groups(cell_cols, names: dict | None, lineages: dict | None) -> dict[str, list]:
    """Cell clusters of each lineage with at least two of them (a lone type's share is 1).

    Parameters
    ----------
    cell_cols : sequence of str (the counts' cell-cluster columns)
    names : dict or None, cell-cluster -> cell-type name
    lineages : dict or None, cell-type name -> lineage name; unnamed types have no lineage

    Returns
    -------
    ``{lineage: [cell clusters]}`` in column order; {} without names or lineages.
    """
    if not names or not lineages:
        return {}
    out: dict[str, list] = {}
    for col in cell_cols:
        lineage = lineages.get(names.get(col))
        if lineage is not None:
            out.setdefault(str(lineage), []).append(col)
    return {lineage: cols for lineage, cols in out.items() if len(cols) >= 2}


def share_traits(counts: pd.DataFrame, transform: str = "logit", names: dict | None = None,
                 lineages: dict | None = None,
                 min_mean_cells: float = MIN_MEAN_CELLS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transformed shares of the tested cell clusters, of all cells and within their lineage.

    Parameters
    ----------
    counts : DataFrame
        individual, cluster, then cells per cell cluster; individuals without cells left out.
    transform : {"logit", "asin", "inverse_normal"}, as :func:`transform_proportions`
        (over all cell clusters for shares of all cells, over the lineage's for lineage shares).
    names, lineages : see :func:`lineage_groups`
    min_mean_cells : float, see :func:`tested_cell_clusters`

    Returns
    -------
    values : DataFrame (donors with cells, traits), indexed by individual; a lineage trait is NaN
        for a donor without cells in the lineage.
    traits : DataFrame, one row per trait: trait (``T3`` or ``T3_in_T_cells``), cell_cluster,
        share_of (:data:`ALL_CELLS` or the lineage name).
    """
    tested = tested_cell_clusters(counts, min_mean_cells)
    counts, all_cols = counts_with_cells(counts)
    n = counts[all_cols].to_numpy(dtype=np.float64)
    individuals = pd.Index(counts["individual"].astype(str), name="individual")
    values = pd.DataFrame(transform_proportions(n, transform), index=individuals,
                          columns=all_cols)[tested]
    rows = [{"trait": c, "cell_cluster": c, "share_of": ALL_CELLS} for c in tested]
    for lineage, cols in lineage_groups(tested, names, lineages).items():
        sub = n[:, [all_cols.index(c) for c in cols]]
        has = sub.sum(1) > 0
        block = np.full(sub.shape, np.nan)
        if has.any():
            block[has] = transform_proportions(sub[has], transform)
        safe = "".join(ch if ch.isalnum() else "_" for ch in lineage)
        for i, col in enumerate(cols):
            trait = f"{col}_in_{safe}"
            values[trait] = block[:, i]
            rows.append({"trait": trait, "cell_cluster": col, "share_of": lineage})
    return values, pd.DataFrame(rows, columns=["trait", "cell_cluster", "share_of"])


def _pc_design(pcs: pd.DataFrame, individuals) -> tuple[np.ndarray, list[str]]:
    pc_cols = [c for c in pcs.columns if str(c).startswith("PC")]
    if "individual" not in pcs.columns or not pc_cols:
        raise NAMInputError(f"genotype PC table needs columns individual and PC1..; has "
                            f"{list(pcs.columns)}")
    pcs = pcs.set_index(pcs["individual"].astype(str))
    missing = pd.Index(individuals).difference(pcs.index)
    if len(missing):
        raise NAMInputError(f"{len(missing)} individuals have no genotype PCs: {list(missing[:5])}")
    return pcs.loc[list(individuals), pc_cols].to_numpy(dtype=np.float64), pc_cols


def _fit_block(values: pd.DataFrame, pcs: pd.DataFrame, covariates: Covariates | None):
    """ols_glm of the traits (columns of ``values``, no NaN within) plus the joint PC F-test."""
    individuals = values.index.to_numpy(dtype=str)
    X_pc, pc_cols = _pc_design(pcs, individuals)
    cov, cov_names = covariate_columns(covariates, individuals)
    X = np.column_stack([X_pc, cov])
    Y = values.to_numpy(dtype=np.float64)
    table = ols_glm(Y, X, [*pc_cols, *cov_names], list(values.columns))
    f, p = nested_f_test(Y, X, np.arange(X.shape[1]) < len(pc_cols))
    joint = pd.DataFrame({"trait": list(values.columns), "term": JOINT_PCS, "beta": np.nan,
                          "se": np.nan, "t": f, "p": p, "fdr": np.nan, "n": len(individuals),
                          "r2": table["r2"].iloc[:Y.shape[1]].to_numpy()})
    return pd.concat([joint, table], ignore_index=True)


def genotype_association(
    counts: pd.DataFrame,
    pcs: pd.DataFrame,
    transform: str = "logit",
    names: dict | None = None,
    min_mean_cells: float = MIN_MEAN_CELLS,
    covariates: Covariates | None = None,
    lineages: dict | None = None,
) -> pd.DataFrame:
    """Per trait, least squares of the transformed share on the genotype PCs and the covariates.

    Model, over the individuals j with cells (and covariates):
    t(share_jl) = b0 + sum_q b_q PC_jq + sum_c g_c z_jc + e_j, the covariates z numeric centred
    and categorical one-hot with the first level (sorted) dropped, as in a cell-type-share GWAS
    (e.g. inverse-normal shares on sex, age and genotype PCs). Traits: each tested cell cluster's
    share of all cells, and, where ``lineages`` maps its name, its share of its lineage's cells
    (donors without cells in the lineage left out of that trait). One row per trait and term:
    each PC and covariate column (t-test), and term :data:`JOINT_PCS`, the F-test of every PC
    together given the covariates (its statistic in column t; beta and se NaN). fdr is
    Benjamini-Hochberg within each term and share scale (all cells, or lineages) over traits.

    Parameters
    ----------
    counts : DataFrame
        individual, cluster, cells per cell cluster.
    pcs : DataFrame
        Column individual, then the genotype PCs (columns starting with ``PC``).
    transform : {"logit", "asin", "inverse_normal"}
    names : dict or None, cell-cluster -> cell-type name (column cell_type; lineages)
    min_mean_cells : float
    covariates : Covariates or None
    lineages : dict or None, cell-type name -> lineage

    Returns
    -------
    DataFrame with columns trait, cell_cluster, [cell_type,] share_of, term, beta, se, t, p,
    fdr, n, r2, called (fdr < 0.05).
    """
    values, traits = share_traits(counts, transform, names, lineages, min_mean_cells)
    kept = covariates.kept(values.index) if covariates is not None else np.ones(len(values), bool)
    if not kept.all():
        logger.info("genotype association: %d individuals without covariates left out",
                    int((~kept).sum()))
    values = values[kept]
    frames = []
    for share_of, block in traits.groupby("share_of", sort=False):
        sub = values[block["trait"].tolist()]
        sub = sub[sub.notna().all(axis=1)]
        frames.append(_fit_block(sub, pcs, covariates).assign(share_of=share_of))
    table = pd.concat(frames, ignore_index=True)
    scale = np.where(table["share_of"] == ALL_CELLS, ALL_CELLS, "lineage")
    table["fdr"] = table.groupby([scale, table["term"]])["p"].transform(bh)
    table = table.merge(traits[["trait", "cell_cluster"]], on="trait", how="left")
    if names is not None:
        table["cell_type"] = table["cell_cluster"].map(lambda c: names.get(c, "unassigned"))
    table["called"] = table["fdr"] < 0.05
    columns = ["trait", "cell_cluster", *(["cell_type"] if names is not None else []), "share_of",
               "term", "beta", "se", "t", "p", "fdr", "n", "r2", "called"]
    return table[columns]


def association_omnibus(table: pd.DataFrame) -> pd.DataFrame:
    """Per share scale and term, one test across traits: the Cauchy combination of their p.

    :func:`~.glm.cauchy_combination` is valid under the arbitrary correlation between cell
    types' tests (their shares sum to one) without modelling it; a multivariate F-test would
    need the traits' joint residual covariance, which is singular for shares that sum to one.

    Parameters
    ----------
    table : DataFrame from :func:`genotype_association`

    Returns
    -------
    DataFrame with columns share_of (``all_cells`` or ``lineage``), term, method (``cauchy``),
    n_traits, p, fdr (Benjamini-Hochberg over the terms within the scale), min_p, top_trait
    (the trait of the smallest p), called (fdr < 0.05).
    """
    scale = np.where(table["share_of"] == ALL_CELLS, ALL_CELLS, "lineage")
    rows = []
    for (share_of, term), block in table.groupby([scale, table["term"]], sort=False):
        best = block["p"].idxmin() if block["p"].notna().any() else None
        rows.append({"share_of": share_of, "term": term, "method": "cauchy",
                     "n_traits": int(block["p"].notna().sum()),
                     "p": cauchy_combination(block["p"]),
                     "min_p": block["p"].min(),
                     "top_trait": block.loc[best, "trait"] if best is not None else ""})
    out = pd.DataFrame(rows, columns=["share_of", "term", "method", "n_traits", "p", "min_p",
                                      "top_trait"])
    out.insert(5, "fdr", out.groupby("share_of")["p"].transform(bh) if len(out) else [])
    out["called"] = out["fdr"] < 0.05
    return out
