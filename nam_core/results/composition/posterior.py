"""NAM's own composition: draws of each individual cluster's cell-cluster weights from q(u).

:func:`draw_compositions` samples omega_k (``docs/model.md``: the Beta sticks of U5),
:func:`posterior_summary` gives their means and credible intervals, and
:func:`posterior_differences` compares any such draws between clusters (difference, log-ratio,
sccomp's pH0 and Bayesian FDR); the Bayesian bootstrap of :mod:`.bootstrap` yields draws in the
same layout.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import NAMInputError
from ..labels import cell_cluster_names, individual_cluster_names
from .contrasts import contrasts, with_cell_types

__all__ = ["DEFAULT_NULL_LOG_RATIO", "bayesian_fdr", "draw_compositions", "group_draws",
           "posterior_differences", "posterior_summary"]

#: |log(omega_a / omega_b)| below this is a null effect: sccomp's default threshold (0.1 on its
#: logit-fold-change scale), i.e. a relative change of about 10 %.
DEFAULT_NULL_LOG_RATIO = 0.1


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


def group_draws(compositions: dict, atom_to_group: dict) -> dict:
    """Draws per cell type: a group's share in each draw is the sum of its atoms' weights.

    Parameters
    ----------
    compositions : dict
        :func:`draw_compositions` output: ``draws`` (n_draws, K_occ, L_occ), ``cell_clusters``.
    atom_to_group : dict
        Atom name (``C<l>``) -> group name (``T<g>``).

    Returns
    -------
    The same dict with ``draws`` (n_draws, K_occ, G) and ``cell_clusters`` (G,) the group names
    in number order; rows still sum to 1 over the last axis.
    """
    atoms = [str(a) for a in compositions["cell_clusters"]]
    missing = sorted(set(atoms) - set(map(str, atom_to_group)))
    if missing:
        raise NAMInputError(f"cell_types/groups.tsv has no row for atoms {missing}")
    groups = sorted({atom_to_group[a] for a in atoms},
                    key=lambda g: (int("".join(filter(str.isdigit, g)) or 0), g))
    member = np.array([[atom_to_group[a] == g for g in groups] for a in atoms], dtype=np.float64)
    draws = np.asarray(compositions["draws"], dtype=np.float64) @ member  # (n_draws, K, G)
    return {**compositions, "draws": draws, "cell_clusters": np.asarray(groups)}


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
    return with_cell_types(table, names)


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


#: Floor of a share in the log ratio: one cell in a million.
MIN_LOG_SHARE = 1e-6


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
        # shares below MIN_LOG_SHARE (0, or below 0 in a covariate-adjusted draw) count as
        # MIN_LOG_SHARE in the log ratio, so it stays finite and still far from the null
        diff = a - b
        log_ratio = np.log(np.maximum(a, MIN_LOG_SHARE)) - np.log(np.maximum(b, MIN_LOG_SHARE))
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
    return with_cell_types(table, names)
