"""Which cell clusters differ between individual clusters: posterior, differences and tests.

* NAM's own clusters, described (:func:`draw_compositions`, :func:`posterior_summary`): Monte
  Carlo draws of each individual cluster's cell-cluster weights omega_k from q(u)
  (``docs/model.md``: the Beta sticks of U5), their means and 95% credible intervals. These are
  not tested: q(u) pools a cluster's cells as one multinomial (no spread between individuals),
  and the clusters were fitted to the compositions a test would compare.
* The tests (``docs/model.md``, section 12) compare the genotype-only groups of
  :func:`genotype_groups` (each individual's cluster given its genotype alone) and count each
  cell in its atom of :func:`cohort_cell_labels` (weights shared by the whole cohort), so
  neither grouping nor cell counts see which cluster an individual's cells put it in; only cell
  clusters averaging at least :data:`MIN_MEAN_CELLS` per individual are tested.
  - :func:`bootstrap_compositions` with :func:`posterior_differences`: a Bayesian bootstrap over
    each group's individuals, per cell cluster the difference and log-ratio between groups
    with sccomp's posterior probability of a null effect (pH0) and Bayesian FDR;
  - :func:`propeller_test`, as propeller (Phipson et al. 2022) does it: per-individual
    proportions, a logit or arcsine-square-root transform, t-tests and ANOVA across groups,
    Benjamini-Hochberg FDR;
  - :func:`genotype_regression`: per cell cluster, least squares of the transformed
    per-individual proportion on the genotype PCs, an F-test of all PCs and a t-test of each.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
from scipy import special, stats

from ..errors import NAMInputError
from .evaluate import cell_cluster_names, individual_cluster_names

__all__ = [
    "DEFAULT_NULL_LOG_RATIO",
    "MIN_MEAN_CELLS",
    "tested_cell_clusters",
    "draw_compositions",
    "genotype_groups",
    "cohort_cell_labels",
    "bootstrap_compositions",
    "posterior_summary",
    "contrasts",
    "posterior_differences",
    "bayesian_fdr",
    "transform_proportions",
    "propeller_test",
    "genotype_regression",
]

logger = logging.getLogger(__name__)

#: |log(omega_a / omega_b)| below this is a null effect: sccomp's default threshold (0.1 on its
#: logit-fold-change scale), i.e. a relative change of about 10 %.
DEFAULT_NULL_LOG_RATIO = 0.1
#: Pseudo-count added to every cell count before the logit, as propeller does (0.5).
_PSEUDO_COUNT = 0.5
#: A cell cluster is tested only when it averages at least this many cells per individual: below
#: the pseudo-count, the logit of (n + 0.5) / (N + 0.5 L) of most individuals is the pseudo-count
#: over their total N, so a test of a near-empty cluster compares cells per individual, not
#: composition. The filter sees only the pooled count, never the groups (independent filtering,
#: Bourgon et al. 2010), and the FDR is taken over the tested clusters.
MIN_MEAN_CELLS = _PSEUDO_COUNT


def _stick_weights(sticks: np.ndarray, n_components: int) -> np.ndarray:
    """Stick-breaking weights from stick draws (..., n_random) along the last axis.

    Under "tsb" (n_random = n_components - 1) the last stick is 1; under "open" the leftover
    mass is dropped (callers renormalise).
    """
    if sticks.shape[-1] < n_components:
        ones = np.ones((*sticks.shape[:-1], 1))
        sticks = np.concatenate([sticks, ones], axis=-1)
    remaining = np.cumprod(1.0 - sticks, axis=-1)
    shifted = np.concatenate([np.ones((*sticks.shape[:-1], 1)), remaining[..., :-1]], axis=-1)
    return sticks * shifted


def draw_compositions(model, n_draws: int = 1000, seed: int = 0) -> dict:
    """Monte Carlo draws of omega_k, the cell-cluster weights of each individual cluster, from q(u).

    Only occupied clusters are kept (individual clusters holding an individual, cell clusters
    holding a cell, by the fit's hard labels) and each draw is renormalised over the occupied
    cell clusters, so it is the composition of the cells the fit assigned.

    Parameters
    ----------
    model : fitted NAM (or CAM)
        Uses ``a_u_``, ``b_u_`` (n_u, K) in stick order, ``cell_order_``, ``individual_order_``,
        ``individual_labels_`` and ``cell_labels_``.
    n_draws : int
        Monte Carlo draws.
    seed : int
        Seed of the draws (numpy ``default_rng``); the same seed gives the same draws.

    Returns
    -------
    dict with ``draws`` (n_draws, K_occ, L_occ) float64 (rows sum to 1 over the last axis),
    ``individual_clusters`` (K_occ,) names ``I<k>`` and ``cell_clusters`` (L_occ,) names ``C<l>``.
    """
    for name in ("a_u_", "b_u_", "cell_order_", "individual_order_", "individual_labels_",
                 "cell_labels_"):
        if not hasattr(model, name):
            raise NAMInputError(f"the fitted model has no {name}; is it a fitted NAM or CAM?")
    if n_draws < 1:
        raise NAMInputError(f"n_draws must be >= 1, got {n_draws}")
    a_u, b_u = np.asarray(model.a_u_, dtype=np.float64), np.asarray(model.b_u_, dtype=np.float64)
    n_atoms = len(model.cell_order_)
    occupied_k = np.unique(model.individual_labels_)
    occupied_l = np.unique(model.cell_labels_)
    rng = np.random.default_rng(seed)
    columns = np.asarray(model.individual_order_)[occupied_k]  # stick columns of those clusters
    sticks = rng.beta(a_u[:, columns].T[None], b_u[:, columns].T[None],
                      size=(n_draws, len(columns), a_u.shape[0]))
    weights = _stick_weights(sticks, n_atoms)  # (n_draws, K_occ, L) in stick order
    weights = weights[..., np.asarray(model.cell_order_)[occupied_l]]
    weights /= weights.sum(axis=-1, keepdims=True)
    return {
        "draws": weights,
        "individual_clusters": individual_cluster_names(occupied_k),
        "cell_clusters": cell_cluster_names(occupied_l),
    }


def genotype_groups(model, pcs: pd.DataFrame) -> pd.DataFrame:
    """Each individual's cluster from its genotype alone, for tests that do not use the data twice.

    NAM forms its individual clusters from the genotype and the cells' composition together
    (``docs/model.md``: U2), so a composition test between those clusters is circular: noise in
    an individual's composition helps choose its cluster. Here each individual gets the
    posterior of S_j given x_j only, under the fitted genotype atoms and weights,

        log r_jk = log E[pi_k] + E log N(x_j | theta^x_k) + const    (E6 under q(theta^x_k)),

    over the occupied individual clusters, and its most probable one. Given the fit, this
    depends on x_j and nothing of individual j's cells.

    Parameters
    ----------
    model : fitted NAM
        Uses ``m_x_``, ``t_x_``, ``c_x_``, ``D_inv_x_`` (K, ...), ``weights_`` (K,) and
        ``individual_labels_`` (which clusters are occupied).
    pcs : DataFrame
        Column individual, then the genotype PCs the model was fitted on (columns starting with
        ``PC``, as many as the model's x dimension, in order).

    Returns
    -------
    DataFrame with columns individual, cluster (the genotype-only cluster, named ``I<k>`` after
    the fitted cluster whose atom it is) and probability (its r_jk); one row per row of ``pcs``.
    """
    for name in ("m_x_", "t_x_", "c_x_", "D_inv_x_", "weights_", "individual_labels_"):
        if not hasattr(model, name):
            raise NAMInputError(f"the fitted model has no {name}: genotype groups need a NAM "
                                "fitted with genotypes")
    pc_cols = [c for c in pcs.columns if str(c).startswith("PC")]
    m = np.asarray(model.m_x_, dtype=np.float64)
    d = m.shape[1]
    if "individual" not in pcs.columns or len(pc_cols) != d:
        raise NAMInputError(f"genotype groups need column individual and the {d} genotype PCs "
                            f"of the fit; got {list(pcs.columns)}")
    occupied = np.unique(np.asarray(model.individual_labels_))
    X = pcs[pc_cols].to_numpy(dtype=np.float64)
    t = np.asarray(model.t_x_, dtype=np.float64)[occupied]
    c = np.asarray(model.c_x_, dtype=np.float64)[occupied]
    scale = np.linalg.inv(np.asarray(model.D_inv_x_, dtype=np.float64)[occupied])  # D_k
    logdet = (special.digamma((c[:, None] + 1.0 - np.arange(1, d + 1)) / 2.0).sum(1)
              + d * np.log(2.0) + np.linalg.slogdet(scale)[1])  # E log|Lambda_k| (E4)
    diff = X[:, None, :] - m[occupied][None]  # (J, K_occ, d)
    quad = np.einsum("jkd,kde,jke->jk", diff, scale, diff) * c
    log_r = (np.log(np.asarray(model.weights_, dtype=np.float64)[occupied])
             + 0.5 * (logdet - d * np.log(2 * np.pi) - d / t - quad))
    r = np.exp(log_r - special.logsumexp(log_r, axis=1, keepdims=True))
    return pd.DataFrame({
        "individual": pcs["individual"].astype(str).to_numpy(),
        "cluster": individual_cluster_names(occupied)[r.argmax(1)],
        "probability": r.max(1),
    })


def cohort_cell_labels(model, Y, group) -> np.ndarray:
    """Each cell's atom as if its individual's cluster were unknown, for tests that do not use the data twice.

    NAM's q(M) update (U1) weighs cell n of individual j by sum_k rho_jk E log omega_lk, so a
    cell type split over two atoms can be split differently in each individual cluster, and
    the fitted cell clusters then differ between individual clusters although the cells do
    not. Here U1 is taken once more with every rho_j replaced by the same vector, the share of
    the individuals in each occupied cluster: the cell's atom then depends on its expression and
    on cohort-wide weights only, never on its individual's cluster. The fit (atoms, q(u)) is
    unchanged; :meth:`~nam_core.models.nested.NestedAtomsEstimator.cohort_cell_labels` does
    the pass.

    Parameters
    ----------
    model : fitted NAM
    Y : array (N, p)
        The cells of the fit (``fit/inputs.npz``: y).
    group : array (N,) of int
        Their individual codes 0..J-1.

    Returns
    -------
    ndarray (N,) of cell-cluster labels (label order, as ``cell_labels_``).
    """
    if not hasattr(model, "cohort_cell_labels") or not hasattr(model, "cell_order_"):
        raise NAMInputError("cohort cell labels need a fitted (or loaded) NAM")
    return model.cohort_cell_labels(Y, group)


def cell_counts(labels, group, individuals, clusters) -> pd.DataFrame:
    """``cells_per_individual.tsv`` from cell labels: individual, cluster, cells per ``C<l>``.

    Parameters
    ----------
    labels : array (N,) of int
        Cell-cluster label of each cell.
    group : array (N,) of int
        Individual code of each cell, 0..J-1.
    individuals : array (J,) of str
        Name of each individual code.
    clusters : array (J,) of str
        Individual cluster (``I<k>``) of each individual.
    """
    labels, group = np.asarray(labels), np.asarray(group)
    occupied = np.unique(labels)
    counts = np.zeros((len(individuals), len(occupied)), dtype=np.int64)
    np.add.at(counts, (group, np.searchsorted(occupied, labels)), 1)
    table = pd.DataFrame(counts, columns=[str(c) for c in cell_cluster_names(occupied)])
    table.insert(0, "cluster", np.asarray(clusters, dtype=str))
    table.insert(0, "individual", np.asarray(individuals, dtype=str))
    return table


def bootstrap_compositions(
    counts: pd.DataFrame,
    n_draws: int = 1000,
    seed: int = 0,
    min_individuals: int = 2,
    min_mean_cells: float = MIN_MEAN_CELLS,
) -> dict:
    """Draws of each individual cluster's mean composition from a Bayesian bootstrap over its individuals.

    Rubin's (1981) Bayesian bootstrap: per draw, Dirichlet(1, ..., 1) weights on the
    individuals of a cluster, and the composition is the weighted mean of their proportions.
    These are draws from the posterior of the population mean composition under a Dirichlet
    process model of the individuals with a vanishing prior, so they carry the spread between
    individuals that q(u) leaves out (q(u) pools the cluster's cells as one multinomial). The
    proportions are the individuals' raw shares (no pseudo-count, which would tie a sparse
    cluster's share to the individual's total), so a cluster with no cell of a cell cluster has
    share 0 and an infinite log-ratio against the others.

    Parameters
    ----------
    counts : DataFrame
        individual, cluster (``I<k>``), then cells per cell cluster (``C<l>``); individuals
        without cells are left out.
    n_draws : int
        Bootstrap draws.
    seed : int
        Seed of the Dirichlet weights (numpy ``default_rng``).
    min_individuals : int
        Clusters with fewer individuals (with cells) are left out: one individual has no
        spread to draw from.
    min_mean_cells : float
        Only cell clusters of :func:`tested_cell_clusters` are kept (shares stay those of all
        the individual's cells).

    Returns
    -------
    dict with ``draws`` (n_draws, K_kept, L_tested) float64, ``individual_clusters``
    (K_kept,), ``cell_clusters`` (L_tested,) and ``sizes`` (K_kept,) individuals per cluster;
    the layout of :func:`draw_compositions`, so :func:`posterior_differences` takes either.
    """
    if n_draws < 1:
        raise NAMInputError(f"n_draws must be >= 1, got {n_draws}")
    tested = tested_cell_clusters(counts, min_mean_cells)
    counts, cell_cols = _counts_matrix(counts)
    n = counts[cell_cols].to_numpy(dtype=np.float64)
    shares = (n / n.sum(1, keepdims=True))[:, [cell_cols.index(c) for c in tested]]
    clusters = counts["cluster"].astype(str).to_numpy()
    names = sorted(set(clusters), key=lambda k: int(k[1:]))
    kept = [k for k in names if (clusters == k).sum() >= min_individuals]
    if len(kept) < len(names):
        logger.warning("left out of the composition differences (fewer than %d individuals): %s",
                       min_individuals, sorted(set(names) - set(kept)))
    rng = np.random.default_rng(seed)
    draws = np.empty((n_draws, len(kept), len(tested)))
    for i, k in enumerate(kept):
        members = shares[clusters == k]
        weights = rng.dirichlet(np.ones(len(members)), size=n_draws)
        draws[:, i] = weights @ members
    return {"draws": draws, "individual_clusters": np.asarray(kept),
            "cell_clusters": np.asarray(tested, dtype=str),
            "sizes": np.array([(clusters == k).sum() for k in kept])}


def posterior_summary(compositions: dict, names: dict | None = None) -> pd.DataFrame:
    """Mean and 95% credible interval of omega_lk per (individual cluster, cell cluster).

    Parameters
    ----------
    compositions : dict
        Output of :func:`draw_compositions`.
    names : dict or None
        Cell-type name of each cell cluster (``C<l>`` -> name), added as column cell_type.

    Returns
    -------
    DataFrame with columns individual_cluster, cell_cluster, [cell_type,] mean, lower (2.5%),
    upper (97.5%), sd; one row per pair, proportions in [0, 1].
    """
    draws = compositions["draws"]
    k_names, l_names = compositions["individual_clusters"], compositions["cell_clusters"]
    lower, upper = np.quantile(draws, [0.025, 0.975], axis=0)
    table = pd.DataFrame({
        "individual_cluster": np.repeat(k_names, len(l_names)),
        "cell_cluster": np.tile(l_names, len(k_names)),
        "mean": draws.mean(axis=0).ravel(),
        "lower": lower.ravel(),
        "upper": upper.ravel(),
        "sd": draws.std(axis=0).ravel(),
    })
    return _with_names(table, names)


def _with_names(table: pd.DataFrame, names: dict | None) -> pd.DataFrame:
    if names is None:
        return table
    table.insert(table.columns.get_loc("cell_cluster") + 1, "cell_type",
                 table["cell_cluster"].map(lambda c: names.get(c, "unassigned")))
    return table


def contrasts(individual_clusters, sizes) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Each cluster against the rest, then every pair: (label, weights of A, weights of B).

    Parameters
    ----------
    individual_clusters : sequence of str (K,)
    sizes : array (K,)
        Individuals in each cluster; "the rest" is the size-weighted mean of the other clusters.

    Returns
    -------
    list of (contrast label such as ``"I1 vs rest"`` or ``"I1 vs I2"``, weights (K,) of side A,
    weights (K,) of side B); each weight vector sums to 1.
    """
    names = list(map(str, individual_clusters))
    sizes = np.asarray(sizes, dtype=np.float64)
    K = len(names)
    out = []
    if K < 2:
        return out
    for k in range(K):
        a = np.eye(K)[k]
        b = np.where(np.arange(K) == k, 0.0, sizes)
        out.append((f"{names[k]} vs rest", a, b / b.sum()))
    if K > 2:  # with two clusters each pair is already "I1 vs rest"
        for i, j in itertools.combinations(range(K), 2):
            out.append((f"{names[i]} vs {names[j]}", np.eye(K)[i], np.eye(K)[j]))
    return out


def bayesian_fdr(prob_null) -> np.ndarray:
    """Bayesian FDR as sccomp defines it: sort by pH0; the FDR of each call is the mean pH0 up to it.

    Parameters
    ----------
    prob_null : array (n,)
        Posterior probability of a null effect of each test.

    Returns
    -------
    fdr : ndarray (n,), in the input order.
    """
    p = np.asarray(prob_null, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    fdr = np.empty_like(p)
    fdr[order] = np.cumsum(p[order]) / np.arange(1, p.size + 1)
    return fdr


def posterior_differences(
    compositions: dict,
    sizes,
    null_log_ratio: float = DEFAULT_NULL_LOG_RATIO,
    names: dict | None = None,
) -> pd.DataFrame:
    """Per cell cluster and contrast: difference and log-ratio of omega, pH0 and Bayesian FDR.

    Parameters
    ----------
    compositions : dict
        Output of :func:`draw_compositions`.
    sizes : array (K_occ,)
        Individuals in each occupied individual cluster (weights of "the rest").
    null_log_ratio : float
        Threshold of a null effect on the natural-log ratio log(omega_A / omega_B). As in
        sccomp, pH0 = 1 - max(P(log-ratio > threshold), P(log-ratio < -threshold)): an effect
        counts only when the posterior puts its mass on one side, so a diffuse posterior (a
        rare cell cluster) is not called.
    names : dict or None
        Cell-type name of each cell cluster, added as column cell_type.

    Returns
    -------
    DataFrame, one row per (contrast, cell cluster), with columns contrast, group_a, group_b,
    cell_cluster, [cell_type,] prop_a, prop_b (posterior means), effect (omega_A - omega_B),
    lower, upper (its 95% credible interval), log_ratio, log_ratio_lower, log_ratio_upper,
    prob_null (pH0), fdr (Bayesian FDR within the contrast, over cell clusters), called
    (fdr < 0.05). Empty with these columns when fewer than two individual clusters are occupied.
    """
    if not null_log_ratio > 0:
        raise NAMInputError(f"null_log_ratio must be positive, got {null_log_ratio}")
    draws = compositions["draws"]
    l_names = compositions["cell_clusters"]
    rows = []
    for label, wa, wb in contrasts(compositions["individual_clusters"], sizes):
        a = np.einsum("k,dkl->dl", wa, draws)
        b = np.einsum("k,dkl->dl", wb, draws)
        with np.errstate(divide="ignore", invalid="ignore"):  # a share of 0: +-inf
            diff, log_ratio = a - b, np.log(a) - np.log(b)
        lo, hi = np.quantile(diff, [0.025, 0.975], axis=0)
        rlo, rhi = np.quantile(log_ratio, [0.025, 0.975], axis=0)
        p_null = 1.0 - np.maximum((log_ratio > null_log_ratio).mean(0),
                                  (log_ratio < -null_log_ratio).mean(0))
        group_a, group_b = label.split(" vs ")
        rows.append(pd.DataFrame({
            "contrast": label, "group_a": group_a, "group_b": group_b, "cell_cluster": l_names,
            "prop_a": a.mean(0), "prop_b": b.mean(0), "effect": diff.mean(0),
            "lower": lo, "upper": hi, "log_ratio": log_ratio.mean(0),
            "log_ratio_lower": rlo, "log_ratio_upper": rhi, "prob_null": p_null,
            "fdr": bayesian_fdr(p_null),
        }))
    columns = ["contrast", "group_a", "group_b", "cell_cluster", "prop_a", "prop_b", "effect",
               "lower", "upper", "log_ratio", "log_ratio_lower", "log_ratio_upper", "prob_null",
               "fdr"]
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    table["called"] = table["fdr"].astype(float) < 0.05
    return _with_names(table, names)


def transform_proportions(counts: np.ndarray, transform: str = "logit") -> np.ndarray:
    """Per-individual proportions on propeller's scales.

    Parameters
    ----------
    counts : array (J, L)
        Cells of each individual in each cell cluster (individuals without cells are dropped
        by the caller).
    transform : {"logit", "asin"}
        ``logit``: log((n + 0.5) / (N + 0.5 L - n - 0.5)), propeller's pseudo-count of 0.5;
        ``asin``: arcsin(sqrt(n / N)).

    Returns
    -------
    ndarray (J, L) float64
    """
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise NAMInputError("transform_proportions got an individual without cells")
    if transform == "logit":
        p = (counts + _PSEUDO_COUNT) / (totals + _PSEUDO_COUNT * counts.shape[1])
        return np.log(p) - np.log1p(-p)
    if transform == "asin":
        return np.arcsin(np.sqrt(counts / totals))
    raise NAMInputError(f"transform must be 'logit' or 'asin', got {transform!r}")


def _bh(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def _counts_matrix(counts: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The cell-cluster columns (``C<l>``) of a counts table, individuals with cells only."""
    for column in ("individual", "cluster"):
        if column not in counts.columns:
            raise NAMInputError(f"counts table lacks column {column!r}; has {list(counts.columns)}")
    cell_cols = [c for c in counts.columns if c not in ("individual", "cluster")]
    if not cell_cols:
        raise NAMInputError("counts table has no cell-cluster columns")
    totals = counts[cell_cols].sum(axis=1)
    return counts.loc[totals > 0].reset_index(drop=True), cell_cols


def tested_cell_clusters(counts: pd.DataFrame, min_mean_cells: float = MIN_MEAN_CELLS) -> list[str]:
    """The cell clusters that average at least ``min_mean_cells`` cells per individual with cells.

    Parameters
    ----------
    counts : DataFrame
        individual, cluster, then cells per cell cluster.
    min_mean_cells : float
        See :data:`MIN_MEAN_CELLS`; 0 tests every cluster.

    Returns
    -------
    list of the cell-cluster column names kept, in table order.
    """
    counts, cell_cols = _counts_matrix(counts)
    mean = counts[cell_cols].to_numpy(dtype=np.float64).mean(axis=0)
    kept = [str(c) for c, m in zip(cell_cols, mean, strict=True) if m >= min_mean_cells]
    if len(kept) < len(cell_cols):
        logger.info("not tested (fewer than %g cells per individual on average): %s",
                    min_mean_cells, [c for c in cell_cols if c not in kept])
    return kept


def propeller_test(
    counts: pd.DataFrame,
    transform: str = "logit",
    names: dict | None = None,
    min_mean_cells: float = MIN_MEAN_CELLS,
) -> pd.DataFrame:
    """Propeller-style tests of each cell cluster's proportion across individual clusters.

    Per cell cluster, the transformed per-individual proportions are compared with Student's
    t-test for each contrast of :func:`contrasts` (each cluster against the pooled rest, each
    pair) and with a one-way ANOVA across all individual clusters (contrast ``"all"``);
    p-values are Benjamini-Hochberg adjusted within each contrast over cell clusters. Unlike
    propeller, variances are not moderated (no limma); with tens of individuals per cluster
    this changes little.

    Parameters
    ----------
    counts : DataFrame
        ``composition/cells_per_individual.tsv``: individual, cluster (``I<k>``), then cells per
        cell cluster. Individuals without cells are left out.
    transform : {"logit", "asin"}
    names : dict or None
        Cell-type name of each cell cluster.
    min_mean_cells : float
        Only the cell clusters of :func:`tested_cell_clusters` are tested (transforms use all).

    Returns
    -------
    DataFrame with columns contrast, group_a, group_b, cell_cluster, [cell_type,] prop_a,
    prop_b (mean per-individual proportions; NaN for "all"), statistic (t or F), p_value, fdr,
    called (fdr < 0.05).
    """
    tested = tested_cell_clusters(counts, min_mean_cells)
    counts, all_cols = _counts_matrix(counts)
    keep = [all_cols.index(c) for c in tested]
    values = transform_proportions(counts[all_cols].to_numpy(), transform)[:, keep]
    shares = counts[all_cols].to_numpy(dtype=np.float64)
    shares = (shares / shares.sum(axis=1, keepdims=True))[:, keep]
    cell_cols = tested
    clusters = counts["cluster"].astype(str).to_numpy()
    k_names = sorted(set(clusters), key=lambda n: int(n[1:]))
    sizes = np.array([(clusters == k).sum() for k in k_names])
    frames = []
    for label, wa, wb in contrasts(k_names, sizes):
        in_a = np.isin(clusters, np.asarray(k_names)[wa > 0])
        in_b = np.isin(clusters, np.asarray(k_names)[wb > 0])
        if in_a.sum() < 2 or in_b.sum() < 2:
            t, p = np.full(len(cell_cols), np.nan), np.full(len(cell_cols), np.nan)
        else:
            t, p = stats.ttest_ind(values[in_a], values[in_b], axis=0)
        group_a, group_b = label.split(" vs ")
        frames.append(pd.DataFrame({
            "contrast": label, "group_a": group_a, "group_b": group_b, "cell_cluster": cell_cols,
            "prop_a": shares[in_a].mean(0), "prop_b": shares[in_b].mean(0),
            "statistic": t, "p_value": p, "fdr": _bh(p)}))
    groups = [values[clusters == k] for k in k_names if (clusters == k).sum() >= 2]
    if len(groups) >= 2:
        f, p = stats.f_oneway(*groups, axis=0)
        frames.append(pd.DataFrame({
            "contrast": "all", "group_a": "all", "group_b": "", "cell_cluster": cell_cols,
            "prop_a": np.nan, "prop_b": np.nan, "statistic": f, "p_value": p, "fdr": _bh(p)}))
    columns = ["contrast", "group_a", "group_b", "cell_cluster", "prop_a", "prop_b",
               "statistic", "p_value", "fdr"]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    table["called"] = table["fdr"].astype(float) < 0.05
    return _with_names(table, names)


def genotype_regression(
    counts: pd.DataFrame,
    pcs: pd.DataFrame,
    transform: str = "logit",
    names: dict | None = None,
    min_mean_cells: float = MIN_MEAN_CELLS,
) -> pd.DataFrame:
    """Per cell cluster, least squares of the transformed proportion on the genotype PCs.

    Model: t(p_jl) = b0 + sum_q b_q PC_jq + e_j over individuals j with cells. Term ``all`` is
    the F-test of every PC together (R^2 in its own column), ``PC<q>`` the t-test of one.
    p-values are Benjamini-Hochberg adjusted within each term over cell clusters.

    Parameters
    ----------
    counts : DataFrame
        ``composition/cells_per_individual.tsv`` (individual, cluster, cells per cell cluster).
    pcs : DataFrame
        Genotype PCs: column individual, then PC columns (``individuals.tsv`` or
        ``genotypes/pcs.tsv``); columns starting with ``PC`` are used.
    transform : {"logit", "asin"}
    names : dict or None
    min_mean_cells : float
        Only the cell clusters of :func:`tested_cell_clusters` are tested (transforms use all).

    Returns
    -------
    DataFrame with columns cell_cluster, [cell_type,] term, estimate (NaN for "all"),
    statistic (t or F), p_value, fdr, r2, n_individuals, called (fdr < 0.05).
    """
    tested = tested_cell_clusters(counts, min_mean_cells)
    counts, all_cols = _counts_matrix(counts)
    pc_cols = [c for c in pcs.columns if str(c).startswith("PC")]
    if "individual" not in pcs.columns or not pc_cols:
        raise NAMInputError(f"genotype PC table needs columns individual and PC1..; has {list(pcs.columns)}")
    pcs = pcs.set_index(pcs["individual"].astype(str))
    missing = pd.Index(counts["individual"].astype(str)).difference(pcs.index)
    if len(missing):
        raise NAMInputError(f"{len(missing)} individuals have no genotype PCs: {list(missing[:5])}")
    Y = transform_proportions(counts[all_cols].to_numpy(), transform)
    Y, cell_cols = Y[:, [all_cols.index(c) for c in tested]], tested
    X = pcs.loc[counts["individual"].astype(str), pc_cols].to_numpy(dtype=np.float64)
    n, q = X.shape
    if n <= q + 1:
        raise NAMInputError(f"{n} individuals with cells cannot fit {q} genotype PCs and an intercept")
    design = np.column_stack([np.ones(n), X])
    coef, *_ = np.linalg.lstsq(design, Y, rcond=None)
    resid = Y - design @ coef
    df_resid = n - q - 1
    sigma2 = (resid**2).sum(0) / df_resid
    se = np.sqrt(np.outer(np.diag(np.linalg.pinv(design.T @ design)), sigma2))
    t = coef / se
    p_t = 2 * stats.t.sf(np.abs(t), df_resid)
    tss = ((Y - Y.mean(0)) ** 2).sum(0)
    r2 = 1 - (resid**2).sum(0) / tss
    f = (r2 / q) / ((1 - r2) / df_resid)
    p_f = stats.f.sf(f, q, df_resid)
    frames = [pd.DataFrame({"cell_cluster": cell_cols, "term": "all", "estimate": np.nan,
                            "statistic": f, "p_value": p_f, "fdr": _bh(p_f), "r2": r2})]
    for i, pc in enumerate(pc_cols, start=1):
        frames.append(pd.DataFrame({"cell_cluster": cell_cols, "term": pc, "estimate": coef[i],
                                    "statistic": t[i], "p_value": p_t[i], "fdr": _bh(p_t[i]),
                                    "r2": r2}))
    table = pd.concat(frames, ignore_index=True)
    table["n_individuals"] = n
    table["called"] = table["fdr"] < 0.05
    return _with_names(table, names)


def composition_tables(
    model,
    counts: pd.DataFrame,
    pcs: pd.DataFrame,
    names: dict | None = None,
    n_draws: int = 4000,
    seed: int = 0,
    null_log_ratio: float = DEFAULT_NULL_LOG_RATIO,
    transform: str = "logit",
    inputs=None,
) -> dict[str, pd.DataFrame]:
    """Every table of the composition analysis of one fit.

    ``posterior`` describes NAM's own clusters from q(u). The tests must not use the data twice
    (NAM's clusters are fitted to the compositions they would test), so they compare the
    genotype-only clusters of :func:`genotype_groups` and count each cell in its atom of
    :func:`cohort_cell_labels`; neither sees which cluster the individual's cells put it in.
    ``differences`` draws each group's mean composition from a Bayesian bootstrap over its
    individuals (:func:`bootstrap_compositions`), ``propeller`` tests the individuals'
    proportions and ``genotype`` regresses them on the genotype PCs.

    Parameters
    ----------
    model : fitted NAM
    counts : DataFrame
        ``composition/cells_per_individual.tsv`` (the fit's labels; gives each individual's NAM
        cluster, and the test counts when ``inputs`` is None).
    pcs : DataFrame
        Column individual and the genotype PCs of the fit (``individuals.tsv``); the first
        ``q`` PC columns are used (q: the fit's x dimension) unless ``inputs`` gives x.
    names : dict or None
        Cell-type name of each cell cluster.
    n_draws, seed : int
        Monte Carlo draws (from q(u) and from the Bayesian bootstrap) and their seed.
    null_log_ratio : float
        Threshold of a null effect (:func:`posterior_differences`).
    transform : {"logit", "asin"}
        Scale of the per-individual proportions (propeller and genotype regression).
    inputs : FitInputs or None
        ``fit/inputs.npz`` (x, y, group, individuals). Without it the tests count cells by the
        fit's own labels, which see the individual's cluster (logged as a warning).

    Returns
    -------
    dict with DataFrames ``posterior``, ``groups`` (individual, nam_cluster, cluster,
    probability: the grouping of the tests), ``differences``, ``propeller`` and ``genotype``.
    """
    nam_cluster = counts.set_index(counts["individual"].astype(str))["cluster"].astype(str)
    if inputs is not None:
        individuals = np.asarray(inputs.individuals, dtype=str)
        x = np.asarray(inputs.x, dtype=np.float64)
        pcs = pd.DataFrame(x, columns=[f"PC{i + 1}" for i in range(x.shape[1])])
        pcs.insert(0, "individual", individuals)
        labels = cohort_cell_labels(model, inputs.y, inputs.group)
        test_counts = cell_counts(labels, inputs.group, individuals,
                                  nam_cluster.reindex(individuals).to_numpy())
        logger.info("cohort cell labels: %d of %d cells change atom from the fit's labels",
                    int((labels != np.asarray(model.cell_labels_)).sum()), len(labels))
    else:
        logger.warning("no fit inputs: the tests count cells by the fit's labels, which depend "
                       "on the individual's cluster")
        n_x = np.asarray(model.m_x_).shape[1] if hasattr(model, "m_x_") else 0
        pc_cols = [c for c in pcs.columns if str(c).startswith("PC")][:n_x]
        pcs = pcs[["individual", *pc_cols]]
        test_counts = counts
    groups = genotype_groups(model, pcs)
    groups.insert(1, "nam_cluster", groups["individual"].map(nam_cluster).to_numpy())
    moved = int((groups["cluster"] != groups["nam_cluster"]).sum())
    logger.info("genotype-only clusters of the tests: %d of %d individuals differ from their NAM "
                "cluster; sizes %s", moved, len(groups),
                groups["cluster"].value_counts().sort_index().to_dict())
    cluster_of = groups.set_index("individual")["cluster"]
    by_genotype = test_counts.assign(
        cluster=test_counts["individual"].astype(str).map(cluster_of).to_numpy())
    if by_genotype["cluster"].isna().any():
        missing = by_genotype.loc[by_genotype["cluster"].isna(), "individual"].tolist()
        raise NAMInputError(f"{len(missing)} individuals have no genotype PCs: {missing[:5]}")
    boot = bootstrap_compositions(by_genotype, n_draws=n_draws, seed=seed)
    tables = {
        "posterior": posterior_summary(draw_compositions(model, n_draws=n_draws, seed=seed),
                                       names),
        "groups": groups,
        "differences": posterior_differences(boot, boot["sizes"], null_log_ratio, names),
        "propeller": propeller_test(by_genotype, transform, names),
        "genotype": genotype_regression(test_counts, pcs, transform, names),
    }
    for key in ("differences", "propeller", "genotype"):
        logger.info("%s: %d of %d tests called at FDR < 0.05", key,
                    int(tables[key]["called"].sum()), len(tables[key]))
    return tables
