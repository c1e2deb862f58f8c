"""Groupings for tests that do not use the data twice: genotype-only clusters, cohort cell labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ...errors import NAMInputError
from ..labels import individual_cluster_names

__all__ = ["cohort_cell_labels", "fit_input_pcs", "genotype_groups"]


def fit_input_pcs(inputs) -> pd.DataFrame:
    """The genotype PCs the fit saw (``fit/inputs.npz``): column individual, then PC1..PCq."""
    x = np.asarray(inputs.x, dtype=np.float64)
    pcs = pd.DataFrame(x, columns=[f"PC{i + 1}" for i in range(x.shape[1])])
    pcs.insert(0, "individual", np.asarray(inputs.individuals, dtype=str))
    return pcs


def genotype_groups(model, pcs: pd.DataFrame, cluster_groups: dict | None = None) -> pd.DataFrame:
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
    cluster_groups : dict or None
        Cluster (``I<k>``) -> individual group (``individual_groups/groups.tsv``). Given, r_jk
        is summed over the clusters of each group and the individual gets its most probable
        group; clusters not in it stay alone.

    Returns
    -------
    DataFrame with columns individual, cluster (the genotype-only cluster, named ``I<k>`` after
    the fitted cluster whose atom it is, or its group's name) and probability (its r_jk, summed
    over the group); one row per row of ``pcs``.
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
    names = individual_cluster_names(occupied)
    if cluster_groups:
        names = np.array([cluster_groups.get(c, c) for c in names])
        groups, column = np.unique(names, return_inverse=True)
        summed = np.zeros((len(r), len(groups)))
        np.add.at(summed.T, column, r.T)
        r, names = summed, groups
    return pd.DataFrame({
        "individual": pcs["individual"].astype(str).to_numpy(),
        "cluster": names[r.argmax(1)],
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
