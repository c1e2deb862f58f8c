"""Criteria that decide which of NAM's cell atoms belong to one cell type.

Each criterion returns the candidate joins between atoms as edges ``(a, b, value, joined)``;
:mod:`nam_core.results.cell_types` turns the joined edges into groups (connected components).
Every threshold follows from a stated principle, never from one data set:

- ``"dip"``: two atoms are one type when their union is unimodal along the Fisher discriminant
  axis. Hartigan's dip test (``diptest``) on an equal number of cells from each atom; joined
  when unimodality is not rejected at alpha = 0.05, Bonferroni-corrected over the pairs tested.
- ``"paga"``: PAGA connectivity (``scanpy.tl.paga``) between atoms on the 15-nearest-neighbour
  graph of the PCs; joined above 1/15, one neighbour in fifteen as often as chance would give.
- ``"entropy"``: Baudry et al. (2010): greedy merges of the Gaussian mixture components that
  most lower the entropy of the responsibilities; the number of merges is the elbow (best
  two-segment linear fit) of the entropy against the cumulative number of merged cells, the
  normalised plot Baudry et al. recommend.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CRITERIA", "dip_edges", "paga_edges", "entropy_edges"]

ALPHA = 0.05
N_NEIGHBOURS = 15
N_CANDIDATES = 3
MAX_CELLS_PER_ATOM = 1000


def _centroids(pcs, codes, n_atoms):
    """Mean PC vector of each atom: array (n_atoms, p)."""
    sums = np.zeros((n_atoms, pcs.shape[1]))
    np.add.at(sums, codes, pcs)
    return sums / np.maximum(np.bincount(codes, minlength=n_atoms), 1)[:, None]


def candidate_pairs(centroids, usable, n_candidates=N_CANDIDATES):
    """Each usable atom with its ``n_candidates`` nearest usable atoms by centroid distance.

    Returns a sorted list of pairs ``(a, b)`` with ``a < b``.
    """
    idx = np.flatnonzero(usable)
    pairs = set()
    if len(idx) < 2:
        return []
    d = ((centroids[idx, None, :] - centroids[None, idx, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    for i, a in enumerate(idx):
        for j in np.argsort(d[i], kind="stable")[: min(n_candidates, len(idx) - 1)]:
            b = idx[j]
            pairs.add((min(a, b), max(a, b)))
    return sorted(pairs)


def fisher_projection(xa, xb):
    """Project two atoms' cells onto their Fisher discriminant axis.

    xa, xb : arrays (n_a, p), (n_b, p). Returns array (n_a + n_b,) of projections.
    """
    p = xa.shape[1]
    sw = np.cov(xa, rowvar=False).reshape(p, p) + np.cov(xb, rowvar=False).reshape(p, p)
    sw += 1e-6 * np.trace(sw) / p * np.eye(p)
    w = np.linalg.solve(sw, xa.mean(0) - xb.mean(0))
    return np.concatenate([xa, xb]) @ (w / np.linalg.norm(w))


def dip_edges(pcs, codes, n_atoms, usable, rng, alpha=ALPHA):
    """Dip-test p-value of each candidate pair; joined when p > alpha / n_pairs."""
    import diptest

    members = [np.flatnonzero(codes == a) for a in range(n_atoms)]
    pairs = candidate_pairs(_centroids(pcs, codes, n_atoms), usable)
    level = alpha / max(len(pairs), 1)
    edges = []
    for a, b in pairs:
        n = min(len(members[a]), len(members[b]), MAX_CELLS_PER_ATOM)
        xa = pcs[rng.choice(members[a], n, replace=False)]
        xb = pcs[rng.choice(members[b], n, replace=False)]
        _, pval = diptest.diptest(fisher_projection(xa, xb))
        edges.append((a, b, float(pval), bool(pval > level)))
    return edges, "dip_pvalue", level


def paga_edges(pcs, codes, n_atoms, usable, rng, n_neighbors=N_NEIGHBOURS):
    """PAGA connectivity between atoms; joined above ``1 / n_neighbors``."""
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    adata = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(len(codes))]))
    adata.obsm["X_pca"] = np.asarray(pcs, dtype=np.float32)
    adata.obs["atom"] = pd.Categorical(codes, categories=range(n_atoms))
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="X_pca",
                    random_state=int(rng.integers(2**31)))
    threshold = 1.0 / n_neighbors
    graph = adata.obsp["connectivities"].tocoo()
    if not (codes[graph.row] != codes[graph.col]).any():
        return [], "paga_connectivity", threshold  # no edge between atoms: nothing to join
    sc.tl.paga(adata, groups="atom")
    conn = adata.uns["paga"]["connectivities"].toarray()
    edges = []
    for a in range(n_atoms):
        for b in range(a + 1, n_atoms):
            if usable[a] and usable[b] and conn[a, b] > 0:
                edges.append((a, b, float(conn[a, b]), bool(conn[a, b] > threshold)))
    return edges, "paga_connectivity", threshold


def _responsibilities(pcs, codes, n_atoms, usable):
    """Gaussian-mixture responsibilities of the usable atoms: array (n_cells, n_usable)."""
    from scipy.stats import multivariate_normal

    idx = np.flatnonzero(usable)
    p = pcs.shape[1]
    logd = np.empty((len(pcs), len(idx)))
    for j, a in enumerate(idx):
        x = pcs[codes == a]
        cov = np.cov(x, rowvar=False).reshape(p, p) + 1e-6 * np.eye(p)
        logd[:, j] = np.log(len(x) / len(pcs)) + multivariate_normal(x.mean(0), cov).logpdf(pcs)
    logd -= logd.max(1, keepdims=True)
    tau = np.exp(logd)
    return tau / tau.sum(1, keepdims=True), idx


def _xlogx(t):
    return np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)


def _elbow(x, ent):
    """Index of the change point of the best two-segment linear fit of ``ent`` against ``x``."""
    k = np.asarray(x, dtype=float)
    best, where = np.inf, 0
    for c in range(1, len(ent) - 1):
        sse = 0.0
        for sl in (slice(0, c + 1), slice(c, len(ent))):
            coef = np.polyfit(k[sl], ent[sl], 1)
            sse += float(((np.polyval(coef, k[sl]) - ent[sl]) ** 2).sum())
        if sse < best:
            best, where = sse, c
    return where


def entropy_edges(pcs, codes, n_atoms, usable, rng):
    """Baudry et al. (2010) greedy entropy merges; merges up to the elbow are joined."""
    tau, idx = _responsibilities(pcs, codes, n_atoms, usable)
    groups = [[int(a)] for a in idx]
    ent = [float(-_xlogx(tau).sum())]
    merged_cells = [0.0]  # Baudry et al.'s x-axis: cumulative cells in the merged components
    merges = []
    while tau.shape[1] > 1:
        best, bk, bl = -np.inf, 0, 1
        for k in range(tau.shape[1]):
            for m in range(k + 1, tau.shape[1]):
                gain = float((_xlogx(tau[:, k] + tau[:, m]) - _xlogx(tau[:, k])
                              - _xlogx(tau[:, m])).sum())
                if gain > best:
                    best, bk, bl = gain, k, m
        merges.append((groups[bk][0], groups[bl][0], best / len(pcs)))
        merged_cells.append(merged_cells[-1] + float(tau[:, bk].sum() + tau[:, bl].sum()))
        tau[:, bk] += tau[:, bl]
        tau = np.delete(tau, bl, axis=1)
        groups[bk] += groups.pop(bl)
        ent.append(float(-_xlogx(tau).sum()))
    # ent[j]: entropy after j merges; merge j (1-based) is kept when j <= elbow.
    n_keep = _elbow(merged_cells, np.asarray(ent)) if len(ent) > 2 else 0
    edges = [(a, b, v, j < n_keep) for j, (a, b, v) in enumerate(merges)]
    return edges, "entropy_decrease_per_cell", float("nan")


CRITERIA = {"dip": dip_edges, "paga": paga_edges, "entropy": entropy_edges}
