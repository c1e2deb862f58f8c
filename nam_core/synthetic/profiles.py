"""Real immune cell-type profiles behind the synthetic counts, and the markers they imply.

The profiles are the mean expression of six merged cell types of scanpy's bundled
``pbmc68k_reduced`` data set (no download); :func:`known_markers` lists the genes most specific
to each, which differential expression on the synthetic counts should recover.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pandas as pd

from .cohort_parts import MEDIAN_LIBRARY

__all__ = ["BASE_COMPOSITION", "CELL_TYPE_MAP", "known_markers", "source_profiles"]

logger = logging.getLogger(__name__)

#: ``bulk_labels`` of pbmc68k_reduced merged into six well-separated types. ``CD34+`` (13 cells,
#: progenitors) is dropped as too small to give a stable mean profile.
CELL_TYPE_MAP: dict[str, str] = {
    "CD4+/CD25 T Reg": "CD4 T",
    "CD4+/CD45RO+ Memory": "CD4 T",
    "CD4+/CD45RA+/CD25- Naive T": "CD4 T",
    "CD8+ Cytotoxic T": "CD8 T",
    "CD8+/CD45RA+ Naive Cytotoxic": "CD8 T",
    "CD19+ B": "B",
    "CD56+ NK": "NK",
    "CD14+ Monocyte": "CD14 Monocyte",
    "Dendritic": "Dendritic",
}

#: Typical PBMC composition; each ancestry's mean composition is a perturbation of it.
BASE_COMPOSITION: dict[str, float] = {
    "CD4 T": 0.35,
    "CD8 T": 0.15,
    "B": 0.10,
    "NK": 0.10,
    "CD14 Monocyte": 0.20,
    "Dendritic": 0.10,
}


@functools.lru_cache(maxsize=1)
def _cached_profiles() -> pd.DataFrame:
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    log_x = np.asarray(pbmc.raw.X.toarray(), dtype=np.float64)  # (700, 765) log1p(normalised)
    labels = pbmc.obs["bulk_labels"].astype(str).map(CELL_TYPE_MAP).to_numpy()
    keep = _purify_labels(log_x, labels)
    linear = np.expm1(log_x[keep])
    profiles = pd.DataFrame(linear, columns=pbmc.raw.var_names).groupby(labels[keep]).mean()
    profiles = profiles.div(profiles.sum(axis=1), axis=0)
    profiles.index.name = "cell_type"
    logger.debug("source profiles from %d of %d pbmc68k_reduced cells", keep.sum(), len(keep))
    return profiles.loc[list(BASE_COMPOSITION)]


def _purify_labels(log_x: np.ndarray, labels: np.ndarray, max_iter: int = 10) -> np.ndarray:
    """Keep cells whose nearest type centroid (Pearson correlation, log scale) is their own label.

    Parameters
    ----------
    log_x : ndarray (N, G)
        Log-normalised expression.
    labels : ndarray (N,) of object
        Merged type of each cell, None/NaN for dropped types.

    Returns
    -------
    keep : ndarray (N,) of bool
    """
    labelled = pd.notna(labels)
    keep = labelled.copy()
    centred = log_x - log_x.mean(axis=1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=1, keepdims=True)
    for _ in range(max_iter):
        types = sorted(set(labels[keep]))
        centroids = np.stack([log_x[keep & (labels == t)].mean(axis=0) for t in types])
        centroids -= centroids.mean(axis=1, keepdims=True)
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        nearest = np.asarray(types, dtype=object)[(centred @ centroids.T).argmax(axis=1)]
        new_keep = labelled & (nearest == labels)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return keep


def source_profiles() -> pd.DataFrame:
    """Mean expression profile of each demo cell type, from scanpy's bundled pbmc68k_reduced.

    ``bulk_labels`` are merged by :data:`CELL_TYPE_MAP`; cells whose expression is closer to
    another type's centroid than to their own label's are dropped (the bulk labels of this data
    set are noisy); per-type means are taken on the linear scale (``expm1`` of the log-normalised
    ``.raw``) and rescaled to sum to one.

    Returns
    -------
    profiles : DataFrame (n_types, n_genes)
        Relative expression rate of each gene (rows sum to 1), rows in the order of
        :data:`BASE_COMPOSITION`.
    """
    return _cached_profiles().copy()


def known_markers(
    profiles: pd.DataFrame,
    n_markers: int = 10,
    library_size: float = MEDIAN_LIBRARY,
    min_mean_count: float = 0.5,
) -> pd.DataFrame:
    """The genes most specific to each cell type in ``profiles``: what DE should recover.

    A gene is a candidate for type t when t has its highest rate and a typical cell of type t
    has at least ``min_mean_count`` UMIs of it; candidates are ranked by
    log2((p_t + eps) / (mean_{u != t} p_u + eps)), eps = 0.05 UMI per ``library_size``.

    Parameters
    ----------
    profiles : DataFrame (n_types, n_genes)
        Rows sum to 1 (see :func:`source_profiles`).
    n_markers : int
        Markers per type (fewer when fewer genes qualify).
    library_size : float
        UMIs per cell used to turn rates into expected counts.
    min_mean_count : float
        Minimum expected UMIs per cell of the type.

    Returns
    -------
    DataFrame with columns cell_type, gene, rank (1 = most specific), log2_specificity.
    """
    p = profiles.to_numpy(dtype=np.float64)
    eps = 0.05 / library_size
    n_types = p.shape[0]
    rows = []
    for t, cell_type in enumerate(profiles.index):
        others = np.delete(p, t, axis=0).mean(axis=0)
        score = np.log2((p[t] + eps) / (others + eps))
        ok = (p.argmax(axis=0) == t) & (p[t] * library_size >= min_mean_count)
        if n_types == 1:
            ok = p[t] * library_size >= min_mean_count
        order = np.flatnonzero(ok)[np.argsort(-score[ok], kind="stable")][:n_markers]
        for rank, g in enumerate(order, start=1):
            rows.append((cell_type, profiles.columns[g], rank, float(score[g])))
    return pd.DataFrame(rows, columns=["cell_type", "gene", "rank", "log2_specificity"])
