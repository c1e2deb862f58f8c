"""Donor-level tables: one row per donor for a statistician, and a PLINK2 phenotype file."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...errors import NAMInputError
from .association import share_traits
from .counts import MIN_MEAN_CELLS

__all__ = ["donor_table", "donor_shares_long", "plink_traits", "safe_name"]

logger = logging.getLogger(__name__)


def safe_name(text: str) -> str:
    """``text`` with every character other than a letter, digit or underscore as ``_``."""
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in str(text))


def _cell_columns(counts: pd.DataFrame) -> list[str]:
    return [c for c in counts.columns if c not in ("individual", "cluster")]


def plink_traits(counts: pd.DataFrame, fam: pd.DataFrame, transform: str = "logit",
                 names: dict | None = None, lineages: dict | None = None,
                 min_mean_cells: float = MIN_MEAN_CELLS) -> pd.DataFrame:
    """A PLINK2 ``--pheno`` table of the transformed shares of the tested cell types.

    Parameters
    ----------
    counts : DataFrame
        The counts the tests used: individual, cluster, cells per cell type.
    fam : DataFrame
        The cohort's .fam (columns fid, iid), for each donor's FID.
    transform, names, lineages, min_mean_cells : as :func:`~.association.share_traits`

    Returns
    -------
    DataFrame with columns FID, IID, then one column per trait (``T1``, lineage shares
    ``T1_in_T``; safe names), one row per donor with cells, in the counts' order. A value that
    cannot be computed (a donor without cells in a lineage) is the string ``NA``, which PLINK2
    reads as missing.
    """
    values, _ = share_traits(counts, transform, names, lineages, min_mean_cells)
    fid = pd.Series(fam["fid"].astype(str).to_numpy(), index=fam["iid"].astype(str).to_numpy())
    missing = values.index.difference(fid.index)
    if len(missing):
        raise NAMInputError(f"the .fam has no row for donors {list(missing[:5])}")
    out = values.rename(columns=safe_name).reset_index(drop=True)
    if out.isna().any().any():
        out = out.astype(object).where(out.notna(), "NA")
    out.insert(0, "IID", values.index.to_numpy())
    out.insert(0, "FID", fid.loc[values.index].to_numpy())
    return out


def donor_table(individuals: pd.DataFrame, counts: pd.DataFrame, groups: pd.DataFrame,
                covariates: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per donor: covariates, genotype PCs, NAM cluster and posterior, counts and shares.

    Parameters
    ----------
    individuals : DataFrame
        ``individuals.tsv``: individual, cluster, probability, n_cells, prob_<cluster>...,
        PC1.. (the NAM cluster, its posterior and the genotype PCs).
    counts : DataFrame
        The counts the tests used: individual, cluster, cells per cell type (``T<g>``).
    groups : DataFrame
        ``composition/groups.tsv``: individual, cluster (the genotype-only cluster of the tests).
    covariates : DataFrame or None
        ``covariates/donors.tsv`` (individual, covariates); donors without them get NA.

    Returns
    -------
    DataFrame in the order of ``individuals``: individual, the covariates, PC columns,
    nam_cluster, nam_probability, prob_<cluster>..., genotype_cluster, n_cells, then
    ``n_<type>`` (cells) and ``share_<type>`` (of the donor's cells; NA without cells) per type.
    """
    ind = individuals.assign(individual=individuals["individual"].astype(str))
    pc_cols = [c for c in ind.columns if str(c).startswith("PC")]
    prob_cols = [c for c in ind.columns if str(c).startswith("prob_")]
    out = ind[["individual"]].copy()
    if covariates is not None:
        cov = covariates.assign(individual=covariates["individual"].astype(str))
        out = out.merge(cov, on="individual", how="left")
    out[pc_cols] = ind[pc_cols].to_numpy()
    out["nam_cluster"] = ind["cluster"].to_numpy()
    out["nam_probability"] = ind["probability"].to_numpy()
    out[prob_cols] = ind[prob_cols].to_numpy()
    cluster_of = groups.assign(individual=groups["individual"].astype(str)).set_index(
        "individual")["cluster"]
    out["genotype_cluster"] = out["individual"].map(cluster_of).to_numpy()
    cells = _cell_columns(counts)
    n = counts.assign(individual=counts["individual"].astype(str)).set_index(
        "individual")[cells].reindex(out["individual"]).fillna(0).to_numpy(dtype=np.int64)
    total = n.sum(1)
    out["n_cells"] = total
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(total[:, None] > 0, n / total[:, None], np.nan)
    counts_wide = pd.DataFrame(n, columns=[f"n_{safe_name(c)}" for c in cells])
    shares_wide = pd.DataFrame(shares, columns=[f"share_{safe_name(c)}" for c in cells])
    return pd.concat([out.reset_index(drop=True), counts_wide, shares_wide], axis=1)


def donor_shares_long(counts: pd.DataFrame, names: dict | None = None) -> pd.DataFrame:
    """The counts and shares of :func:`donor_table`, one row per (donor, cell type).

    Returns
    -------
    DataFrame with columns individual, cell_cluster, cell_type, n_cells, total_cells, share
    (NA for a donor without cells).
    """
    cells = _cell_columns(counts)
    long = counts.melt(id_vars=["individual"], value_vars=cells, var_name="cell_cluster",
                       value_name="n_cells")
    long["individual"] = long["individual"].astype(str)
    long["total_cells"] = long.groupby("individual")["n_cells"].transform("sum")
    long["share"] = long["n_cells"] / long["total_cells"].where(long["total_cells"] > 0)
    long.insert(2, "cell_type", long["cell_cluster"].map(lambda c: (names or {}).get(c, "")))
    order = {ind: i for i, ind in enumerate(counts["individual"].astype(str))}
    long = long.sort_values(["individual", "cell_cluster"],
                            key=lambda s: s.map(order) if s.name == "individual"
                            else s.map({c: i for i, c in enumerate(cells)}))
    return long.reset_index(drop=True)
