"""Neighbours and a 2-D UMAP embedding of cells: a tool run on the preprocessed cells.

As scanpy's ``tl.umap``: the embedding is written to ``obsm["X_umap"]`` and its parameters to
``uns["umap"]``, and the step logs what it did and how long it took.
"""

from __future__ import annotations

import logging
import time

import anndata as ad
import numpy as np

from ..errors import NAMInputError
from ..errors import examples

__all__ = ["add_umap"]

logger = logging.getLogger(__name__)


def add_umap(
    adata: ad.AnnData, use_rep: str = "X_pca", n_neighbors: int = 15, seed: int = 0,
    max_cells: int | None = None,
) -> None:
    """k-nearest-neighbour graph and 2-D UMAP embedding, in place.

    Up to ``max_cells`` cells: scanpy's ``neighbors`` and ``umap`` on all cells. Above it (large
    cohorts): umap-learn fitted on a fixed-seed subsample of ``max_cells`` cells (with
    ``low_memory=True`` and scanpy's ``min_dist=0.5``), the other cells placed by
    ``UMAP.transform`` in blocks of ``max_cells``; no graph is stored then.

    Parameters
    ----------
    adata : AnnData (N, G)
        With ``obsm[use_rep]`` of shape (N, d).
    use_rep : str
        Representation used for neighbours (expression PCs by default).
    n_neighbors : int
        Neighbours per cell (capped at N - 1).
    seed : int
        Seed of the neighbour search, the subsample and the UMAP layout.
    max_cells : int or None
        Cells the embedding is fitted on (None: all).

    Returns
    -------
    None
        Writes ``obsm["X_umap"]`` (N, 2) and ``uns["umap"]``; on all cells also
        ``obsp["distances"]``, ``obsp["connectivities"]`` and ``uns["neighbors"]``.
    """
    import scanpy as sc

    if use_rep not in adata.obsm:
        raise NAMInputError(
            f"obsm has no {use_rep!r} to build neighbours from; available: "
            f"{examples(adata.obsm.keys(), limit=20) or 'none'}"
        )
    if adata.n_obs < 3:
        raise NAMInputError(f"UMAP needs at least 3 cells, got {adata.n_obs}")
    k = min(n_neighbors, adata.n_obs - 1)
    if k < n_neighbors:
        logger.info("n_neighbors=%d capped at %d (cells - 1)", n_neighbors, k)
    t0 = time.perf_counter()
    if max_cells is not None and adata.n_obs > max_cells:
        _umap_by_transform(adata, use_rep, k, seed, max_cells)
    else:
        sc.pp.neighbors(adata, n_neighbors=k, use_rep=use_rep, random_state=seed)
        sc.tl.umap(adata, random_state=seed)
    logger.info(
        "neighbours (k=%d on %s) and UMAP of %d cells in %.1f s",
        k, use_rep, adata.n_obs, time.perf_counter() - t0,
    )


def _umap_by_transform(adata: ad.AnnData, use_rep: str, k: int, seed: int, max_cells: int) -> None:
    """UMAP fitted on ``max_cells`` cells drawn with ``seed``; the rest placed by ``transform``.

    The rest are placed ``max_cells`` at a time, so memory does not grow with the cells placed
    (each new cell is placed against the fitted cells only).
    """
    import umap

    X = np.asarray(adata.obsm[use_rep], dtype=np.float32)
    fit = np.zeros(adata.n_obs, dtype=bool)
    fit[np.random.default_rng(seed).choice(adata.n_obs, size=max_cells, replace=False)] = True
    model = umap.UMAP(n_neighbors=k, min_dist=0.5, random_state=seed, low_memory=True)
    embedding = np.empty((adata.n_obs, 2), dtype=np.float32)
    embedding[fit] = model.fit_transform(X[fit])
    rest = np.flatnonzero(~fit)
    for start in range(0, rest.size, max_cells):  # memory of placing max_cells cells at a time
        block = rest[start:start + max_cells]
        embedding[block] = model.transform(X[block])
    adata.obsm["X_umap"] = embedding
    adata.uns["umap"] = {"params": {"n_neighbors": k, "min_dist": 0.5, "fitted_cells": max_cells,
                                    "seed": seed, "rest": "transform"}}
    logger.info("UMAP fitted on %d of %d cells (seed %d), the rest placed by transform",
                max_cells, adata.n_obs, seed)
