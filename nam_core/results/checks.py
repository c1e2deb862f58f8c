"""Checks of the composition analysis against the demo cohort's truth (``evaluate_demo``'s sibling).

The demo generator draws each individual's cell-type proportions around its ancestry's; the truth
of an individual cluster is therefore the mean true proportion of its individuals (from the true
cell type of every cell that passed QC), and the true difference of a contrast is the same
size-weighted combination the model's contrast uses (:func:`~nam_core.results.composition.contrasts`).
"""

from __future__ import annotations

import logging

import pandas as pd

from .composition import contrasts
from .evaluate import EVALUATION_COLUMNS, majority_labels
from .labels import cluster_number

__all__ = ["DEFAULT_TRUE_EFFECT", "DEFAULT_MIN_SHARE", "NEGLIGIBLE_EFFECT", "true_differences",
           "check_composition"]

logger = logging.getLogger(__name__)

#: True differences of at least 5 percentage points must be called: the typical 95% interval of
#: a cluster's share on the demo is a few points wide, so a smaller difference may be missed
#: without any fault of the method.
DEFAULT_TRUE_EFFECT = 0.05
#: Cell clusters holding at least 1% of the cells must be named after their true type.
DEFAULT_MIN_SHARE = 0.01
#: A call of the propeller-style test on a true difference in share below this is a call on
#: noise: one percentage point, a fifth of the smallest difference that must be called.
NEGLIGIBLE_EFFECT = 0.01


def true_differences(obs: pd.DataFrame, individuals: pd.DataFrame) -> pd.DataFrame:
    """True difference in share of each true cell type for each contrast of the fit.

    Parameters
    ----------
    obs : DataFrame
        One row per cell: individual, cell_type (truth), nam_cell_cluster.
    individuals : DataFrame
        individual, cluster: the grouping the tests compared (``composition/groups.tsv``, the
        genotype-only clusters).

    Returns
    -------
    DataFrame with columns contrast, cell_cluster, cell_type (majority true type of the cell
    cluster), true_effect.
    """
    cluster_of = individuals.set_index(individuals["individual"].astype(str))["cluster"].astype(str)
    shares = pd.crosstab(obs["individual"].astype(str), obs["cell_type"].astype(str),
                         normalize="index")
    by_cluster = shares.groupby(cluster_of.reindex(shares.index)).mean()
    k_names = sorted(by_cluster.index, key=cluster_number)
    by_cluster = by_cluster.loc[k_names]
    sizes = cluster_of.value_counts().reindex(k_names).to_numpy()
    majority = majority_labels(obs["nam_cell_cluster"].astype(str), obs["cell_type"].astype(str))
    rows = []
    for label, wa, wb in contrasts(k_names, sizes):
        effect = wa @ by_cluster.to_numpy() - wb @ by_cluster.to_numpy()
        for cluster, cell_type in zip(majority["cluster"], majority["majority"], strict=True):
            rows.append((label, cluster, cell_type,
                         float(effect[list(by_cluster.columns).index(cell_type)])))
    return pd.DataFrame(rows, columns=["contrast", "cell_cluster", "cell_type", "true_effect"])


def _with_propeller_calls(detail: pd.DataFrame, propeller: pd.DataFrame,
                          checked: pd.Series) -> tuple[pd.DataFrame, list]:
    """``detail`` with column propeller_called, and the two evaluation rows of its calls."""
    calls = propeller[propeller["contrast"] != "all"].set_index(["contrast", "cell_cluster"])["called"]
    key = pd.MultiIndex.from_frame(detail[["contrast", "cell_cluster"]])
    detail = detail.assign(propeller_called=calls.reindex(key).astype("boolean").array)
    tested = checked & detail["propeller_called"].notna()
    called = detail["propeller_called"].fillna(False).astype(bool)
    must = tested & detail["must_call"]
    made = tested & called
    real = detail["true_effect"].abs() >= NEGLIGIBLE_EFFECT
    return detail, [
        ("propeller_true_differences_called", called[must].mean() if must.any() else 1.0, 1.0),
        ("propeller_calls_on_real_differences", real[made].mean() if made.any() else 1.0, 1.0),
    ]


def check_composition(
    obs: pd.DataFrame,
    individuals: pd.DataFrame,
    differences: pd.DataFrame,
    names: pd.DataFrame,
    permutation: pd.DataFrame,
    min_true_effect: float = DEFAULT_TRUE_EFFECT,
    min_share: float = DEFAULT_MIN_SHARE,
    propeller: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The checks the demo must pass.

    Parameters
    ----------
    obs : DataFrame
        Cells: individual, cell_type (truth), nam_cell_cluster.
    individuals : DataFrame
        ``composition/groups.tsv`` (individual, cluster), the grouping of ``differences``.
    differences : DataFrame
        ``composition/differences.tsv``.
    names : DataFrame
        ``cell_types/names.tsv`` (cluster, cell_type, share).
    permutation : DataFrame
        ``cell_types/marker_permutation.tsv`` (cluster, p_value).
    min_true_effect : float
        True differences at least this large (share of cells) must be called.
    min_share : float
        Cell clusters at least this large (share of cells) must be named after their true type
        and have a permutation p-value below 0.01; smaller ones are left out of the difference
        checks too (a splinter cluster of a type does not carry the type's share).
    propeller : DataFrame or None
        ``composition/propeller.tsv``: when given, its calls are scored on the contrasts it
        tests (column propeller_called of ``detail``).

    Returns
    -------
    evaluation : DataFrame with EVALUATION_COLUMNS: true_differences_called (share of the true
        differences >= min_true_effect called at FDR < 0.05), small_true_effects_called (calls
        of real differences under half of min_true_effect: true, but small),
        names_match_truth, permutation_p_below_0.01; with ``propeller``,
        propeller_true_differences_called (the same share for its calls, over its contrasts)
        and propeller_calls_on_real_differences (share of its calls whose true difference is
        at least :data:`NEGLIGIBLE_EFFECT`).
    detail : DataFrame: each (contrast, cell cluster) with truth and call (and
        propeller_called: NA where the propeller-style table has no such row).
    """
    truth = true_differences(obs, individuals)
    detail = truth.merge(differences[["contrast", "cell_cluster", "effect", "lower", "upper",
                                      "prob_null", "fdr", "called"]],
                         on=["contrast", "cell_cluster"], how="left")
    share = obs["nam_cell_cluster"].astype(str).value_counts(normalize=True)
    detail["cluster_share"] = detail["cell_cluster"].map(share).to_numpy()
    # a splinter cluster (under min_share of the cells) does not carry its type's share
    checked = detail["cluster_share"] >= min_share
    detail["must_call"] = checked & (detail["true_effect"].abs() >= min_true_effect)
    detail["called"] = detail["called"].astype("boolean").fillna(False).astype(bool)
    must = detail[detail["must_call"]]
    small = detail[checked & (detail["true_effect"].abs() < min_true_effect / 2)]
    named = names.merge(truth.drop_duplicates("cell_cluster")[["cell_cluster", "cell_type"]]
                        .rename(columns={"cell_cluster": "cluster", "cell_type": "true_type"}),
                        on="cluster", how="left")
    big = named[named["share"] >= min_share]
    perm = permutation.merge(names[["cluster", "share"]], on="cluster")
    perm = perm[perm["share"] >= min_share]
    rows = [
        ("true_differences_called", must["called"].mean() if len(must) else 1.0, 1.0),
        ("n_true_differences", len(must), None),
        ("small_true_effects_called", float(small["called"].sum()), None),
        ("names_match_truth", float((big["cell_type"] == big["true_type"]).mean()), 1.0),
        ("permutation_p_below_0.01", float((perm["p_value"] < 0.01).mean()), 1.0),
    ]
    if propeller is not None:
        detail, scored = _with_propeller_calls(detail, propeller, checked)
        rows += scored
    evaluation = pd.DataFrame(
        [(n, float(v), t, None if t is None else bool(v >= t)) for n, v, t in rows],
        columns=EVALUATION_COLUMNS)
    for name, value, threshold, passed in evaluation.itertuples(index=False):
        logger.info("%s = %.4g%s", name, value,
                    "" if threshold is None or pd.isna(threshold)
                    else f" (threshold {threshold:g}: {'pass' if passed else 'FAIL'})")
    detail["true_type_named"] = detail["cell_cluster"].map(
        named.set_index("cluster")["cell_type"]).fillna("")
    return evaluation, detail
