"""Leiden clustering of cells on their expression PCs: the reference users compare NAM against.

scanpy's ``sc.pp.neighbors`` builds one k-nearest-neighbour graph of the same expression PCs NAM
is fitted on, and ``sc.tl.leiden`` (igraph flavour) partitions it at each resolution. Leiden
produces cell labels only; the simulation registry (``nam_core.study.methods``) and the demo
evaluation (:mod:`nam_core.results.evaluate`) both call :func:`leiden_labels`.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from ..errors import NAMInputError

__all__ = ["leiden_labels", "leiden_table", "n_large_clusters"]

logger = logging.getLogger(__name__)


def leiden_labels(
    Y, resolutions=(0.5, 1.0), n_neighbors: int = 15, seed: int = 0
) -> dict[float, np.ndarray]:
    """Leiden partitions of the cells' kNN graph, one per resolution.

    Parameters
    ----------
    Y : array (N, p)
        Expression PCs of the cells.
    resolutions : sequence of float
        Leiden resolutions (larger: more clusters).
    n_neighbors : int
        Neighbours per cell in the graph (scanpy's default, 15).
    seed : int
        Seed of the neighbour search and of Leiden; the same seed gives the same labels.

    Returns
    -------
    dict resolution -> ndarray (N,) of int
        0-based labels, 0 = the largest cluster.
    """
    import anndata as ad
    import scanpy as sc

    Y = np.asarray(Y, dtype=np.float32)
    if Y.ndim != 2 or Y.shape[0] <= n_neighbors:
        raise NAMInputError(
            f"Leiden needs a (cells, PCs) matrix with more than {n_neighbors} cells; got shape {Y.shape}"
        )
    if not np.isfinite(Y).all():
        raise NAMInputError("Leiden: the expression PCs contain NaN or infinite values")
    t0 = time.perf_counter()
    adata = ad.AnnData(X=Y)
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="X", random_state=seed)
    out = {}
    for res in resolutions:
        key = f"leiden_{float(res)}"
        sc.tl.leiden(
            adata, resolution=float(res), flavor="igraph", n_iterations=2, directed=False,
            random_state=seed, key_added=key,
        )
        out[float(res)] = _by_size(adata.obs[key].astype(int).to_numpy())
    logger.info(
        "Leiden on %d cells x %d PCs in %.1f s: %s", *Y.shape, time.perf_counter() - t0,
        ", ".join(f"resolution {r:g} -> {n_large_clusters(lab)} clusters of >= 1% of cells"
                  for r, lab in out.items()),
    )
    return out


def leiden_table(
    cells, Y, resolutions=(0.5, 1.0), n_neighbors: int = 15, seed: int = 0
) -> pd.DataFrame:
    """Leiden clusters of every cell as a table (the workflow's ``leiden/cells.tsv``).

    Parameters
    ----------
    cells : sequence of str (N,)
        Cell names.
    Y, resolutions, n_neighbors, seed
        As :func:`leiden_labels`.

    Returns
    -------
    DataFrame with columns cell and ``leiden_<resolution>`` (``L1, L2, ...``, 1 = largest).
    """
    labels = leiden_labels(Y, resolutions, n_neighbors, seed)
    table = pd.DataFrame({"cell": np.asarray(cells, dtype=str)})
    for res, lab in labels.items():
        table[f"leiden_{float(res)}"] = np.char.add("L", (lab + 1).astype(str))
    return table


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel 0..n-1 by decreasing cluster size (ties by the old label)."""
    sizes = np.bincount(labels)
    order = np.lexsort((np.arange(sizes.size), -sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[labels]


def n_large_clusters(labels, min_share: float = 0.01) -> int:
    """Clusters holding at least ``min_share`` of the cells.

    Parameters
    ----------
    labels : array (N,)
    min_share : float
        Share of all cells, in [0, 1].
    """
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    return int((counts >= min_share * counts.sum()).sum())
