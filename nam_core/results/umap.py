"""Neighbours and a 2-D UMAP embedding of cells: a tool run on the preprocessed cells.

As scanpy's ``tl.umap``: the embedding is written to ``obsm["X_umap"]`` and its parameters to
``uns["umap"]``, and the step logs what it did and how long it took.
"""

from __future__ import annotations

import logging
import time
from functools import partial

import anndata as ad
import numpy as np

from ..errors import NAMInputError, examples

__all__ = ["add_umap", "place_by_neighbours", "PLACEMENTS"]

#: How cells beyond the fitted subsample are placed on the UMAP.
PLACEMENTS = {
    "neighbours": "the mean position of their fitted neighbours",
    "transform": "UMAP.transform (the same start, then 30 epochs of gradient descent)",
}

logger = logging.getLogger(__name__)


def add_umap(
    adata: ad.AnnData, use_rep: str = "X_pca", n_neighbors: int = 15, seed: int = 0,
    max_cells: int | None = None, placement: str = "neighbours",
) -> None:
    """k-nearest-neighbour graph and 2-D UMAP embedding, in place.

    Up to ``max_cells`` cells: scanpy's ``neighbors`` and ``umap`` on all cells. Above it (large
    cohorts): umap-learn fitted on a fixed-seed subsample of ``max_cells`` cells (with
    ``low_memory=True`` and scanpy's ``min_dist=0.5``), the other cells placed in blocks of
    ``max_cells`` (``placement``); no graph is stored then.

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
    placement : {"neighbours", "transform"}
        How the other cells are placed (:data:`PLACEMENTS`): at the mean position of their
        fitted neighbours (:func:`place_by_neighbours`), or by ``UMAP.transform``.

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
    if placement not in PLACEMENTS:
        raise NAMInputError(f"UMAP placement must be one of {sorted(PLACEMENTS)}, got {placement!r}")
    if max_cells is not None and adata.n_obs > max_cells:
        _umap_by_transform(adata, use_rep, k, seed, max_cells, placement)
    else:
        sc.pp.neighbors(adata, n_neighbors=k, use_rep=use_rep, random_state=seed)
        sc.tl.umap(adata, random_state=seed)
    logger.info(
        "neighbours (k=%d on %s) and UMAP of %d cells in %.1f s",
        k, use_rep, adata.n_obs, time.perf_counter() - t0,
    )


def _umap_by_transform(adata: ad.AnnData, use_rep: str, k: int, seed: int, max_cells: int,
                       placement: str) -> None:
    """UMAP fitted on ``max_cells`` cells drawn with ``seed``; the rest placed by ``placement``.

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
    place = model.transform if placement == "transform" else partial(place_by_neighbours, model)
    rest = np.flatnonzero(~fit)
    for start in range(0, rest.size, max_cells):  # memory of placing max_cells cells at a time
        block = rest[start:start + max_cells]
        embedding[block] = place(X[block])
    adata.obsm["X_umap"] = embedding
    adata.uns["umap"] = {"params": {"n_neighbors": k, "min_dist": 0.5, "fitted_cells": max_cells,
                                    "seed": seed, "rest": placement}}
    logger.info("UMAP fitted on %d of %d cells (seed %d), the rest placed by %s",
                max_cells, adata.n_obs, seed, PLACEMENTS[placement])


def place_by_neighbours(model, X: np.ndarray) -> np.ndarray:
    """Positions (n, 2) of cells ``X`` (n, d) on a fitted UMAP: the mean of their neighbours'.

    The neighbours among the fitted cells and their weights (membership strengths) are those
    of ``model.transform``, which starts each cell here and then moves it by 30 epochs of
    stochastic gradient descent; this stops at the start. A cell with no neighbour (beyond
    the model's disconnection distance) is placed at NaN, as ``transform`` places it.
    """
    mode = model.transform_mode
    model.set_params(transform_mode="graph")
    try:
        graph = model.transform(X).tocsr()
    finally:
        model.set_params(transform_mode=mode)
    weight = np.asarray(graph.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(graph @ model.embedding_) / weight[:, None]).astype(np.float32)
