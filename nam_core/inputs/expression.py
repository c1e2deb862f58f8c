"""Single-cell expression: read and validate raw counts, QC and normalise, PCA, neighbours and UMAP.

The cell-level vectors y of NAM are the expression principal components written here to
``obsm["X_pca"]`` (docs/model.md, section 1).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import NAMInputError

__all__ = ["read_counts", "preprocess", "add_umap", "standardised_pca", "MT_PREFIX"]

logger = logging.getLogger(__name__)

#: Gene-symbol prefix of mitochondrial genes (case-insensitive).
MT_PREFIX = "MT-"

_N_EXAMPLES = 5
_PCA_CHUNK = 8192  # rows densified at a time by standardised_pca


def _examples(names, limit: int = _N_EXAMPLES) -> str:
    """``'a', 'b', 'c' and 4 more`` for error messages."""
    names = [str(n) for n in names]
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _load_h5ad(path: Path) -> ad.AnnData:
    if not path.exists():
        raise NAMInputError(f"counts file {str(path)!r} does not exist")
    if not path.is_file():
        raise NAMInputError(f"counts file {str(path)!r} is not a file")
    try:
        return ad.read_h5ad(path)
    except Exception as err:  # h5py / anndata raise many types for unreadable files
        raise NAMInputError(
            f"counts file {str(path)!r} could not be read as .h5ad: {type(err).__name__}: {err}"
        ) from err


def _check_individual_column(adata: ad.AnnData, individual_key: str, source: str) -> None:
    if individual_key not in adata.obs.columns:
        raise NAMInputError(
            f"{source}: obs has no column {individual_key!r} naming each cell's individual; "
            f"available obs columns: {_examples(adata.obs.columns, limit=50) or 'none'}"
        )
    missing = adata.obs[individual_key].isna().to_numpy()
    if missing.any():
        raise NAMInputError(
            f"{source}: obs column {individual_key!r} is missing for {int(missing.sum())} cells, "
            f"e.g. {_examples(adata.obs_names[missing])}"
        )


def _check_counts_values(adata: ad.AnnData, source: str) -> None:
    """Finite, non-negative (errors) and integer-like (warning) counts in ``adata.X``."""
    X = adata.X
    if X is None:
        raise NAMInputError(f"{source}: X is empty; expected raw UMI counts")
    if sp.issparse(X):
        coo = sp.coo_matrix(X)
        values = coo.data

        def locate(mask):
            return coo.row[mask], coo.col[mask]
    else:
        values = np.asarray(X).ravel()

        def locate(mask):
            return np.unravel_index(np.flatnonzero(mask), X.shape)

    bad = ~np.isfinite(values)
    if bad.any():
        cells = np.unique(locate(bad)[0])
        raise NAMInputError(
            f"{source}: X holds {int(np.isnan(values).sum())} NaN and "
            f"{int(np.isinf(values).sum())} infinite values in {cells.size} cells, "
            f"e.g. cells {_examples(adata.obs_names[cells])}"
        )
    neg = values < 0
    if neg.any():
        rows, cols = locate(neg)
        cells, genes = np.unique(rows), np.unique(cols)
        raise NAMInputError(
            f"{source}: X holds {int(neg.sum())} negative values in {cells.size} cells; raw UMI "
            f"counts are required (not log-normalised or scaled data), e.g. cells "
            f"{_examples(adata.obs_names[cells])}, genes {_examples(adata.var_names[genes])}"
        )
    frac = values != np.round(values)
    if frac.any():
        cells = np.unique(locate(frac)[0])
        logger.warning(
            "%s: %d values in %d cells are not whole numbers (e.g. cells %s); X should hold raw "
            "UMI counts, not normalised data", source, int(frac.sum()), cells.size,
            _examples(adata.obs_names[cells]),
        )


def read_counts(path, individual_key: str) -> ad.AnnData:
    """Read raw UMI counts from ``path`` (.h5ad) and validate them.

    Parameters
    ----------
    path : str or Path
        An .h5ad file whose ``X`` holds raw counts (cells x genes).
    individual_key : str
        ``obs`` column naming each cell's individual (matched to the genotype IIDs later).

    Returns
    -------
    AnnData (N cells, G genes)
        ``obs[individual_key]`` as strings (categorical); duplicated cell or gene names are
        made unique (with a warning).

    Raises
    ------
    NAMInputError
        File missing or unreadable, no cells or genes, no ``individual_key`` column (the
        message lists the available columns) or missing values in it, NaN/inf or negative
        counts (the message counts them and names example cells and genes).
    """
    path = Path(path)
    source = f"counts file {str(path)!r}"
    adata = _load_h5ad(path)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise NAMInputError(f"{source} holds {adata.n_obs} cells and {adata.n_vars} genes")
    _check_individual_column(adata, individual_key, source)
    _check_counts_values(adata, source)
    if not adata.obs_names.is_unique:
        logger.warning("%s: duplicated cell names, made unique", source)
        adata.obs_names_make_unique()
    if not adata.var_names.is_unique:
        logger.warning("%s: duplicated gene names, made unique", source)
        adata.var_names_make_unique()
    adata.obs[individual_key] = adata.obs[individual_key].astype(str).astype("category")
    logger.info(
        "read %s: %d cells, %d genes, %d individuals", source, adata.n_obs, adata.n_vars,
        adata.obs[individual_key].nunique(),
    )
    return adata


def _qc_filter_cells(
    adata: ad.AnnData, min_genes: int, min_counts: int, max_pct_mt: float
) -> tuple[np.ndarray, dict[str, int]]:
    """Apply the cell filters in order (genes, counts, mitochondrial share).

    Returns
    -------
    keep : ndarray (N,) of bool
        Cells passing every filter.
    removed : dict
        Cells removed by each filter, each counted once, by the first filter it fails.
    """
    obs = adata.obs
    tests = {
        "min_genes": obs["n_genes_by_counts"].to_numpy() >= min_genes,
        "min_counts": obs["total_counts"].to_numpy() >= min_counts,
        "max_pct_mt": obs["pct_counts_mt"].to_numpy() <= max_pct_mt,
    }
    keep = np.ones(adata.n_obs, dtype=bool)
    removed = {}
    for name, passes in tests.items():
        removed[name] = int((keep & ~passes).sum())
        keep &= passes
    return keep, removed


def _dense_rows(X, start: int, stop: int) -> np.ndarray:
    block = X[start:stop]
    return np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float64)


def _column_moments(X, chunk: int = _PCA_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Column means (G,) and Gram matrix X^T X (G, G), accumulated in float64 over row chunks."""
    n, g = X.shape
    total = np.zeros(g)
    gram = np.zeros((g, g))
    for start in range(0, n, chunk):
        block = _dense_rows(X, start, start + chunk)
        total += block.sum(axis=0)
        gram += block.T @ block
    return total / n, gram


def standardised_pca(X, n_pcs: int, chunk: int = _PCA_CHUNK) -> dict[str, np.ndarray]:
    """PCA of the columns of ``X`` scaled to zero mean and unit variance, by eigendecomposition.

    The covariance (here: correlation) matrix is accumulated over dense row chunks, so sparse
    input is never densified whole; memory is O(G^2 + chunk * G). The result is deterministic:
    each component's sign makes its largest-magnitude loading positive.

    Parameters
    ----------
    X : (N, G) sparse or dense
        Log-normalised expression of the selected genes.
    n_pcs : int
        Components kept, at most G.

    Returns
    -------
    dict with ``scores`` (N, n_pcs) float32, ``loadings`` (G, n_pcs) float32 (on the
    standardised genes), ``variance`` (n_pcs,) and ``variance_ratio`` (n_pcs,) of the
    standardised data (zero-variance genes contribute nothing).
    """
    n = X.shape[0]
    mean, gram = _column_moments(X, chunk)
    cov = (gram - n * np.outer(mean, mean)) / max(n - 1, 1)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    inv_sd = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
    corr = cov * np.outer(inv_sd, inv_sd)
    eigval, eigvec = np.linalg.eigh(corr)
    order = np.argsort(eigval)[::-1][:n_pcs]
    eigval, eigvec = np.clip(eigval[order], 0.0, None), eigvec[:, order]
    eigvec *= np.sign(eigvec[np.abs(eigvec).argmax(axis=0), np.arange(eigvec.shape[1])])
    projection = eigvec * inv_sd[:, None]  # (G, n_pcs): scale then rotate
    offset = mean @ projection
    scores = np.empty((n, eigvec.shape[1]), dtype=np.float32)
    for start in range(0, n, chunk):
        scores[start : start + chunk] = _dense_rows(X, start, start + chunk) @ projection - offset
    return {
        "scores": scores,
        "loadings": eigvec.astype(np.float32),
        "variance": eigval,
        "variance_ratio": eigval / max(float(np.trace(corr)), np.finfo(float).tiny),
    }


def _pca_on_hvgs(adata: ad.AnnData, n_pcs: int) -> None:
    """Standardised PCA of the highly variable genes.

    Writes ``obsm["X_pca"]`` (N, n_pcs), ``varm["PCs"]`` (G, n_pcs) and ``uns["pca"]``.
    """
    hvg = adata.var["highly_variable"].to_numpy()
    pca = standardised_pca(adata.X[:, hvg], n_pcs)
    adata.obsm["X_pca"] = pca["scores"]
    loadings = np.zeros((adata.n_vars, n_pcs), dtype=np.float32)
    loadings[hvg] = pca["loadings"]
    adata.varm["PCs"] = loadings
    adata.uns["pca"] = {
        "variance": pca["variance"],
        "variance_ratio": pca["variance_ratio"],
        "params": {"n_comps": n_pcs, "genes": "highly_variable", "scaled": True},
    }


def preprocess(
    adata: ad.AnnData,
    individual_key: str = "individual",
    min_genes: int = 200,
    min_cells: int = 3,
    min_counts: int = 500,
    max_pct_mt: float = 20.0,
    n_top_genes: int = 2000,
    n_pcs: int = 30,
    target_sum: float = 1e4,
    seed: int = 0,
) -> ad.AnnData:
    """QC-filter, normalise, select highly variable genes and compute expression PCs.

    Steps: QC metrics (mitochondrial genes = names starting with ``MT-``); drop cells with fewer
    than ``min_genes`` detected genes, fewer than ``min_counts`` UMIs or more than
    ``max_pct_mt`` % mitochondrial UMIs (in that order); drop genes detected in fewer than
    ``min_cells`` kept cells; keep raw counts in ``layers["counts"]``; ``normalize_total`` to
    ``target_sum`` and ``log1p``; ``n_top_genes`` highly variable genes (flavor "seurat");
    PCA of the HVGs scaled to unit variance.

    Parameters
    ----------
    adata : AnnData (N, G)
        Raw counts in ``X`` (see :func:`read_counts`); not modified.
    individual_key : str
        ``obs`` column naming each cell's individual (cells lost per individual are logged).
    min_genes, min_cells, min_counts : int
        QC thresholds (genes per cell, cells per gene, UMIs per cell).
    max_pct_mt : float
        Maximum percentage of mitochondrial UMIs per cell.
    n_top_genes : int
        Highly variable genes (capped at the number of genes kept).
    n_pcs : int
        Principal components (capped at min(HVGs, cells) - 1).
    target_sum : float
        Total UMIs per cell after normalisation.
    seed : int
        Recorded in ``uns["preprocess"]``; every step here is deterministic (the PCA is an
        exact eigendecomposition, see :func:`standardised_pca`), so it changes nothing.

    Returns
    -------
    AnnData (N', G')
        Kept cells and all kept genes; ``X`` log-normalised (float32), ``layers["counts"]`` raw,
        ``var["highly_variable"]``, ``obsm["X_pca"]`` (N', n_pcs), ``varm["PCs"]`` (G', n_pcs,
        zero outside the HVGs), QC columns in ``obs``/``var``, and ``uns["preprocess"]`` with the
        parameters and what each filter removed.

    Raises
    ------
    NAMInputError
        Missing ``individual_key``, or no cells or genes left after QC.
    """
    import scanpy as sc

    t0 = time.perf_counter()
    params = {
        "individual_key": individual_key, "min_genes": min_genes, "min_cells": min_cells,
        "min_counts": min_counts, "max_pct_mt": max_pct_mt, "n_top_genes": n_top_genes,
        "n_pcs": n_pcs, "target_sum": target_sum, "seed": seed,
    }
    _check_individual_column(adata, individual_key, "expression data")
    logger.info("preprocess: %d cells, %d genes; %s", adata.n_obs, adata.n_vars, params)
    adata = adata.copy()
    if sp.issparse(adata.X):
        adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    else:
        adata.X = np.asarray(adata.X, dtype=np.float32)
    adata.var["mt"] = adata.var_names.str.upper().str.startswith(MT_PREFIX)
    logger.info("%d mitochondrial genes (prefix %r)", int(adata.var["mt"].sum()), MT_PREFIX)
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)

    keep, removed = _qc_filter_cells(adata, min_genes, min_counts, max_pct_mt)
    for name, n in removed.items():
        logger.info("filter %s=%s removed %d cells", name, params[name], n)
    if not keep.any():
        raise NAMInputError(
            f"no cells pass QC (min_genes={min_genes}, min_counts={min_counts}, "
            f"max_pct_mt={max_pct_mt}) out of {adata.n_obs}; removed by each filter: {removed}"
        )
    _log_individuals_lost(adata.obs[individual_key], keep)
    n_cells_in = adata.n_obs
    adata = adata[keep].copy()

    detected = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    gene_keep = detected >= min_cells
    logger.info("filter min_cells=%d removed %d genes", min_cells, int((~gene_keep).sum()))
    if not gene_keep.any():
        raise NAMInputError(f"no gene is detected in at least min_cells={min_cells} cells")
    n_genes_in = adata.n_vars
    adata = adata[:, gene_keep].copy()
    adata.var["n_cells_by_counts"] = detected[gene_keep]

    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)

    n_hvg = min(n_top_genes, adata.n_vars)
    if n_hvg < n_top_genes:
        logger.info("n_top_genes=%d capped at the %d genes kept", n_top_genes, n_hvg)
    sc.pp.highly_variable_genes(adata, n_top_genes=n_hvg, flavor="seurat")
    n_hvg = int(adata.var["highly_variable"].sum())

    n_pcs_used = max(1, min(n_pcs, n_hvg - 1, adata.n_obs - 1))
    if n_pcs_used < n_pcs:
        logger.warning(
            "n_pcs=%d capped at %d (%d highly variable genes, %d cells)",
            n_pcs, n_pcs_used, n_hvg, adata.n_obs,
        )
    _pca_on_hvgs(adata, n_pcs_used)

    adata.uns["preprocess"] = {
        "params": params,
        "n_cells_in": n_cells_in,
        "n_genes_in": n_genes_in,
        "cells_removed": removed,
        "genes_removed": {"min_cells": int((~gene_keep).sum())},
        "n_cells_out": adata.n_obs,
        "n_genes_out": adata.n_vars,
        "n_mt_genes": int(adata.var["mt"].sum()),
        "n_highly_variable": n_hvg,
        "n_pcs": n_pcs_used,
    }
    logger.info(
        "preprocess done in %.1f s: %d cells, %d genes, %d HVGs, %d PCs (%.1f %% of HVG variance)",
        time.perf_counter() - t0, adata.n_obs, adata.n_vars, n_hvg, n_pcs_used,
        100 * float(np.sum(adata.uns["pca"]["variance_ratio"])),
    )
    return adata


def _log_individuals_lost(individuals: pd.Series, keep: np.ndarray) -> None:
    """Log individuals whose every cell failed QC (they will have no cells downstream)."""
    before = set(individuals.astype(str).unique())
    after = set(individuals[keep].astype(str).unique())
    lost = sorted(before - after)
    if lost:
        logger.warning(
            "QC removed every cell of %d individuals: %s", len(lost), _examples(lost, 20)
        )


def add_umap(
    adata: ad.AnnData, use_rep: str = "X_pca", n_neighbors: int = 15, seed: int = 0
) -> None:
    """k-nearest-neighbour graph and 2-D UMAP embedding, in place.

    Parameters
    ----------
    adata : AnnData (N, G)
        With ``obsm[use_rep]`` of shape (N, d).
    use_rep : str
        Representation used for neighbours (expression PCs by default).
    n_neighbors : int
        Neighbours per cell (capped at N - 1).
    seed : int
        Seed of the neighbour search and the UMAP layout.

    Returns
    -------
    None
        Writes ``obsp["distances"]``, ``obsp["connectivities"]``, ``uns["neighbors"]``,
        ``obsm["X_umap"]`` (N, 2) and ``uns["umap"]``.
    """
    import scanpy as sc

    if use_rep not in adata.obsm:
        raise NAMInputError(
            f"obsm has no {use_rep!r} to build neighbours from; available: "
            f"{_examples(adata.obsm.keys(), limit=20) or 'none'}"
        )
    if adata.n_obs < 3:
        raise NAMInputError(f"UMAP needs at least 3 cells, got {adata.n_obs}")
    k = min(n_neighbors, adata.n_obs - 1)
    if k < n_neighbors:
        logger.info("n_neighbors=%d capped at %d (cells - 1)", n_neighbors, k)
    t0 = time.perf_counter()
    sc.pp.neighbors(adata, n_neighbors=k, use_rep=use_rep, random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    logger.info(
        "neighbours (k=%d on %s) and UMAP of %d cells in %.1f s",
        k, use_rep, adata.n_obs, time.perf_counter() - t0,
    )
