"""Single-cell expression: read and validate raw counts, QC and normalise, PCA, neighbours and UMAP.

The cell-level vectors y of NAM are the expression principal components written here to
``obsm["X_pca"]`` (docs/model.md, section 1).

Preprocessing streams the cells in row blocks (:mod:`nam_core.inputs.h5ad`), so its memory does
not grow with the number of cells: it holds per-cell QC vectors (N,), per-gene moments (G,), the
HVG covariance (H, H) and one block of rows. It reproduces scanpy's ``calculate_qc_metrics``,
``normalize_total``, ``log1p`` and ``highly_variable_genes(flavor="seurat")`` followed by an
exact standardised PCA; ``tests/nam_core/test_expression.py`` checks the equality against scanpy.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import NAMInputError
from .h5ad import ROW_CHUNK, CountsFile, open_counts
from .h5ad import examples as _examples

__all__ = [
    "read_counts", "read_cell_table", "preprocess", "preprocess_h5ad", "add_umap",
    "standardised_pca", "MT_PREFIX",
]

logger = logging.getLogger(__name__)

#: Gene-symbol prefix of mitochondrial genes (case-insensitive).
MT_PREFIX = "MT-"

_PCA_CHUNK = 4096  # rows densified at a time by the PCA (4096 x 2000 HVGs: 66 MB)
_HVG_BINS = 20  # mean bins of the seurat dispersion normalisation (scanpy's default)

Blocks = Callable[[], Iterator[tuple[np.ndarray, sp.csr_matrix]]]


# ---------------------------------------------------------------- reading


def _check_individual_column(obs: pd.DataFrame, individual_key: str, source: str) -> None:
    if individual_key not in obs.columns:
        raise NAMInputError(
            f"{source}: obs has no column {individual_key!r} naming each cell's individual; "
            f"available obs columns: {_examples(obs.columns, limit=50) or 'none'}"
        )
    missing = obs[individual_key].isna().to_numpy()
    if missing.any():
        raise NAMInputError(
            f"{source}: obs column {individual_key!r} is missing for {int(missing.sum())} cells, "
            f"e.g. {_examples(obs.index[missing])}"
        )


def _unique_index(index: pd.Index, what: str, source: str) -> pd.Index:
    if index.is_unique:
        return index
    logger.warning("%s: duplicated %s names, made unique", source, what)
    return pd.Index(ad.utils.make_index_unique(index.astype(str)))


def _cell_table(counts: CountsFile, individual_key: str) -> pd.DataFrame:
    """The validated cell table: individual column present and complete, as categorical str."""
    _check_individual_column(counts.obs, individual_key, counts.source)
    obs = counts.obs.copy()
    obs.index = _unique_index(obs.index, "cell", counts.source)
    obs[individual_key] = obs[individual_key].astype(str).astype("category")
    return obs


def read_cell_table(path, individual_key: str, counts_layer: str | None = None) -> pd.DataFrame:
    """Validate an .h5ad of raw counts in row blocks and return its cell table.

    The counts are read one block of cells at a time (never whole), so this costs O(block)
    memory at any cohort size.

    Parameters
    ----------
    path : str or Path
        An .h5ad whose counts matrix (cells x genes) holds raw UMI counts.
    individual_key : str
        ``obs`` column naming each cell's individual.
    counts_layer : str or None
        Where the counts are: None for ``X``, ``"raw.X"`` for ``.raw.X``, else a layer name.

    Returns
    -------
    DataFrame (N cells)
        ``obs`` with ``individual_key`` as categorical strings, cell names made unique.

    Raises
    ------
    NAMInputError
        File missing or unreadable; no counts where ``counts_layer`` says; no cells or genes;
        no ``individual_key`` column (the message lists the available ones) or missing values
        in it; NaN, infinite, negative or non-integer counts (the message counts them and
        names example cells and genes, and where else counts may be).
    """
    with open_counts(path, counts_layer) as counts:
        obs = _cell_table(counts, individual_key)
        counts.validate_values()
        logger.info(
            "read %s: %d cells, %d genes, %d individuals", counts.source, *counts.shape,
            obs[individual_key].nunique(),
        )
    return obs


def read_counts(path, individual_key: str, counts_layer: str | None = None) -> ad.AnnData:
    """Read and validate raw UMI counts into memory (small cohorts; see :func:`preprocess_h5ad`).

    Parameters and errors as :func:`read_cell_table`.

    Returns
    -------
    AnnData (N cells, G genes)
        Counts in ``X`` (float32 CSR), ``obs[individual_key]`` as categorical strings;
        duplicated cell or gene names are made unique (with a warning).
    """
    with open_counts(path, counts_layer) as counts:
        obs = _cell_table(counts, individual_key)
        counts.validate_values()
        X = sp.vstack([block for _, block in counts.iter_rows()], format="csr")
        var = counts.var.copy()
        var.index = _unique_index(var.index, "gene", counts.source)
        logger.info(
            "read %s: %d cells, %d genes, %d individuals", counts.source, *counts.shape,
            obs[individual_key].nunique(),
        )
    return ad.AnnData(X=X, obs=obs, var=var)


# ---------------------------------------------------------------- streamed statistics


def _row_ids(block: sp.csr_matrix) -> np.ndarray:
    """Row of each stored value of a CSR block, (nnz,)."""
    return np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))


@dataclasses.dataclass
class _QC:
    """Per-cell QC metrics of the selected cells and per-gene counts (scanpy's names)."""

    n_genes_by_counts: np.ndarray  # (N,) int
    total_counts: np.ndarray  # (N,) float64
    total_counts_mt: np.ndarray  # (N,) float64
    gene_total: np.ndarray  # (G,) UMIs over all selected cells
    gene_cells: np.ndarray  # (G,) selected cells detecting the gene
    gene_cells_kept: np.ndarray  # (G,) cells passing QC detecting the gene
    keep: np.ndarray  # (N,) bool, passes every cell filter

    @property
    def pct_counts_mt(self) -> np.ndarray:
        return np.divide(100 * self.total_counts_mt, self.total_counts,
                         out=np.zeros_like(self.total_counts), where=self.total_counts > 0)


def _cell_filters(n_genes, total, total_mt, min_genes, min_counts, max_pct_mt) -> dict:
    """Pass/fail (n,) of each cell filter, in the order they are applied."""
    pct = np.divide(100 * total_mt, total, out=np.zeros_like(total), where=total > 0)
    return {
        "min_genes": n_genes >= min_genes,
        "min_counts": total >= min_counts,
        "max_pct_mt": pct <= max_pct_mt,
    }


def _qc_pass(blocks: Blocks, n_cells: int, mt: np.ndarray, thresholds: dict,
             check: Callable[[sp.csr_matrix], None] | None = None) -> _QC:
    """One pass: per-cell QC metrics, the cell filters, and gene detection among kept cells."""
    n_genes_total = mt.size
    out = _QC(np.zeros(n_cells, np.int64), np.zeros(n_cells), np.zeros(n_cells),
              np.zeros(n_genes_total), np.zeros(n_genes_total, np.int64),
              np.zeros(n_genes_total, np.int64), np.zeros(n_cells, bool))
    at = 0
    for _, block in blocks():
        if check is not None:
            check(block)
        n = block.shape[0]
        rows = _row_ids(block)
        data = block.data.astype(np.float64)
        detected = block.data > 0
        sl = slice(at, at + n)
        out.n_genes_by_counts[sl] = np.bincount(rows[detected], minlength=n)
        out.total_counts[sl] = np.bincount(rows, weights=data, minlength=n)
        out.total_counts_mt[sl] = np.bincount(rows, weights=data * mt[block.indices], minlength=n)
        passes = _cell_filters(out.n_genes_by_counts[sl], out.total_counts[sl],
                               out.total_counts_mt[sl], **thresholds)
        keep = np.logical_and.reduce(list(passes.values()))
        out.keep[sl] = keep
        out.gene_total += np.bincount(block.indices, weights=data, minlength=n_genes_total)
        out.gene_cells += np.bincount(block.indices[detected], minlength=n_genes_total)
        kept_entries = detected & keep[rows]
        out.gene_cells_kept += np.bincount(block.indices[kept_entries], minlength=n_genes_total)
        at += n
    return out


def _removed_by_filter(qc: _QC, thresholds: dict) -> dict[str, int]:
    """Cells removed by each filter, each counted once, by the first filter it fails."""
    passes = _cell_filters(qc.n_genes_by_counts, qc.total_counts, qc.total_counts_mt, **thresholds)
    keep = np.ones(qc.keep.size, dtype=bool)
    removed = {}
    for name, ok in passes.items():
        removed[name] = int((keep & ~ok).sum())
        keep &= ok
    return removed


def _lognormalise(counts: sp.csr_matrix, target_sum: float) -> sp.csr_matrix:
    """``log1p(counts / total * target_sum)`` per cell, in float32 as scanpy computes it."""
    rows = _row_ids(counts)
    totals = np.bincount(rows, weights=counts.data.astype(np.float64), minlength=counts.shape[0])
    factor = totals.astype(np.float32) / np.float32(target_sum)
    data = counts.data / factor[rows]
    np.log1p(data, out=data)
    return sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)


def _select(block: sp.csr_matrix, rows: np.ndarray, new_column: np.ndarray) -> sp.csr_matrix:
    """Rows ``rows`` (bool, (n,)) and the columns with ``new_column >= 0`` of a CSR block.

    ``new_column`` (G,) gives each kept column's index in the result and -1 for dropped ones;
    stored zeros are dropped too. One pass of numpy over the block's values.
    """
    entry_row = _row_ids(block)
    columns = new_column[block.indices]
    take = rows[entry_row] & (columns >= 0) & (block.data != 0)
    new_row = np.cumsum(rows) - 1
    indptr = np.zeros(int(rows.sum()) + 1, dtype=np.int64)
    np.cumsum(np.bincount(new_row[entry_row[take]], minlength=indptr.size - 1), out=indptr[1:])
    out = sp.csr_matrix((block.data[take], columns[take], indptr),
                        shape=(indptr.size - 1, int(new_column.max()) + 1))
    out.sort_indices()
    return out


def _kept_blocks(blocks: Blocks, keep: np.ndarray, genes: np.ndarray, target_sum: float):
    """Counts and log-normalised expression of the kept cells and genes, block by block."""
    new_column = np.where(genes, np.cumsum(genes) - 1, -1)
    at = 0
    for _, block in blocks():
        n = block.shape[0]
        rows = keep[at : at + n]
        at += n
        if rows.any():
            counts = _select(block, rows, new_column)
            yield counts, _lognormalise(counts, target_sum)


def _seurat_hvgs(mean: np.ndarray, var: np.ndarray, n_top_genes: int) -> pd.DataFrame:
    """Scanpy's ``highly_variable_genes(flavor="seurat", n_top_genes=...)`` from gene moments.

    Parameters
    ----------
    mean, var : ndarray (G,)
        Mean and unbiased variance of each gene's normalised expression (``expm1`` of the
        log-normalised values).
    n_top_genes : int

    Returns
    -------
    DataFrame (G,) with means, dispersions, dispersions_norm and highly_variable.
    """
    mean = mean.copy()
    mean[mean == 0] = 1e-12
    dispersion = var / mean
    dispersion[dispersion == 0] = np.nan
    df = pd.DataFrame({"means": np.log1p(mean), "dispersions": np.log(dispersion)})
    df["mean_bin"] = pd.cut(df["means"], bins=_HVG_BINS)
    stats = df.groupby("mean_bin", observed=True)["dispersions"].agg(avg="mean", dev="std")
    single = stats["dev"].isnull()  # one gene in the bin: normalised dispersion 1
    stats.loc[single, "dev"] = stats.loc[single, "avg"]
    stats.loc[single, "avg"] = 0
    stats = stats.loc[df["mean_bin"]].set_index(df.index)
    df["dispersions_norm"] = (df["dispersions"] - stats["avg"]) / stats["dev"]
    norm = df["dispersions_norm"].to_numpy()
    finite = np.sort(norm[~np.isnan(norm)])[::-1]
    cutoff = finite[min(n_top_genes, finite.size) - 1]
    df["highly_variable"] = np.nan_to_num(norm, nan=-np.inf) >= cutoff
    return df.drop(columns="mean_bin")


def _dense_rows(X, start: int, stop: int) -> np.ndarray:
    block = X[start:stop]
    return np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float64)


def _dense_chunks(blocks: Iterator, chunk: int = _PCA_CHUNK) -> Iterator[np.ndarray]:
    """Split (n, H) sparse or dense blocks into dense float64 pieces of at most ``chunk`` rows."""
    for block in blocks:
        for start in range(0, block.shape[0], chunk):
            yield _dense_rows(block, start, start + chunk)


def _column_moments(chunks: Iterator[np.ndarray], n_cols: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows, column means (G,) and Gram matrix X^T X (G, G), accumulated in float64."""
    n, total, gram = 0, np.zeros(n_cols), np.zeros((n_cols, n_cols))
    for block in chunks:
        n += block.shape[0]
        total += block.sum(axis=0)
        gram += block.T @ block
    return n, total / max(n, 1), gram


def _pca_from_moments(n: int, mean: np.ndarray, gram: np.ndarray, n_pcs: int) -> dict:
    """Eigendecomposition of the correlation matrix; the projection that gives the scores."""
    cov = (gram - n * np.outer(mean, mean)) / max(n - 1, 1)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    inv_sd = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
    corr = cov * np.outer(inv_sd, inv_sd)
    eigval, eigvec = np.linalg.eigh(corr)
    order = np.argsort(eigval)[::-1][:n_pcs]
    eigval, eigvec = np.clip(eigval[order], 0.0, None), eigvec[:, order]
    eigvec *= np.sign(eigvec[np.abs(eigvec).argmax(axis=0), np.arange(eigvec.shape[1])])
    projection = eigvec * inv_sd[:, None]  # (G, n_pcs): scale then rotate
    return {
        "projection": projection,
        "offset": mean @ projection,
        "loadings": eigvec.astype(np.float32),
        "variance": eigval,
        "variance_ratio": eigval / max(float(np.trace(corr)), np.finfo(float).tiny),
    }


def _scores(chunks: Iterator[np.ndarray], pca: dict, n: int) -> np.ndarray:
    scores = np.empty((n, pca["projection"].shape[1]), dtype=np.float32)
    at = 0
    for block in chunks:
        scores[at : at + block.shape[0]] = block @ pca["projection"] - pca["offset"]
        at += block.shape[0]
    return scores


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
    n_rows, mean, gram = _column_moments(_dense_chunks([X], chunk), X.shape[1])
    pca = _pca_from_moments(n_rows, mean, gram, n_pcs)
    pca["scores"] = _scores(_dense_chunks([X], chunk), pca, n)
    return {k: pca[k] for k in ("scores", "loadings", "variance", "variance_ratio")}


# ---------------------------------------------------------------- output sinks


class _MemorySink:
    """Collects the kept cells' counts and log-normalised blocks into one AnnData."""

    def __init__(self, nnz: int = 0):
        self.counts, self.lognorm = [], []

    def add(self, counts: sp.csr_matrix, lognorm: sp.csr_matrix) -> None:
        self.counts.append(counts)
        self.lognorm.append(lognorm)

    def finish(self, obs, var, obsm, varm, uns) -> ad.AnnData:
        adata = ad.AnnData(X=sp.vstack(self.lognorm, format="csr"), obs=obs, var=var,
                           obsm=obsm, varm=varm, uns=uns)
        adata.layers["counts"] = sp.vstack(self.counts, format="csr")
        return adata


class _H5adSink:
    """Writes an .h5ad by appending row blocks to ``X`` and ``layers/counts`` (lzf-compressed).

    Only one block is held at a time; obs, var, obsm, varm and uns are written at the end.
    ``nnz``, the values to be written, chooses the index dtype.
    """

    def __init__(self, path: Path, nnz: int):
        import h5py

        # one dtype for indptr and indices (scipy refuses mixed ones), int64 only when needed
        self.index_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
        self.file = h5py.File(path, "w")
        self.file.attrs["encoding-type"] = "anndata"
        self.file.attrs["encoding-version"] = "0.1.0"
        from anndata.io import write_elem

        write_elem(self.file, "layers", {})
        self.started = False

    def add(self, counts: sp.csr_matrix, lognorm: sp.csr_matrix) -> None:
        from anndata.io import sparse_dataset, write_elem

        for key, block in (("X", lognorm), ("layers/counts", counts)):
            if self.started:
                sparse_dataset(self.file[key]).append(block)
            else:
                block = block.copy()
                block.indptr = block.indptr.astype(self.index_dtype)
                block.indices = block.indices.astype(self.index_dtype)
                write_elem(self.file, key, block, dataset_kwargs={"compression": "lzf"})
        self.started = True

    def finish(self, obs, var, obsm, varm, uns) -> None:
        from anndata.io import write_elem

        for key, value in (("obs", obs), ("var", var), ("obsm", obsm), ("varm", varm),
                           ("uns", uns), ("obsp", {}), ("varp", {})):
            write_elem(self.file, key, value)
        self.file.close()


# ---------------------------------------------------------------- preprocessing


def _warn_if_no_mt(var: pd.DataFrame, n_mt: int, max_pct_mt: float, source: str) -> None:
    """Warn when the mitochondrial filter can remove nothing (no gene name starts with MT-)."""
    if n_mt or max_pct_mt >= 100:
        return
    hint = ""
    for column in var.columns:
        values = var[column]
        if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
            if values.astype(str).str.upper().str.startswith(MT_PREFIX).any():
                hint = f"; var column {column!r} holds symbols starting with {MT_PREFIX!r}"
                break
    logger.warning(
        "%s: no gene name starts with %r (gene names look like %s), so the max_pct_mt=%s "
        "mitochondrial filter removes nothing; give gene symbols as var_names%s",
        source, MT_PREFIX, _examples(var.index[:3], 3), max_pct_mt, hint,
    )


def _check_block(counts: CountsFile) -> Callable[[sp.csr_matrix], None]:
    """A cheap per-block check; on a bad value, the full report of ``validate_values``."""

    def check(block: sp.csr_matrix) -> None:
        data = block.data
        if not (np.isfinite(data).all() and (data >= 0).all() and (data == np.round(data)).all()):
            counts.validate_values()

    return check


def _run(blocks: Blocks, obs: pd.DataFrame, var: pd.DataFrame, source: str, sink, params: dict,
         check=None):
    """The streamed pipeline over the cells yielded by ``blocks`` (in ``obs`` order).

    ``sink(nnz)`` makes the writer of the output once the number of values to write is known.
    """
    t0 = time.perf_counter()
    individual_key = params["individual_key"]
    thresholds = {k: params[k] for k in ("min_genes", "min_counts", "max_pct_mt")}
    logger.info("preprocess: %d cells, %d genes; %s", len(obs), len(var), params)
    mt = np.asarray(var.index.astype(str).str.upper().str.startswith(MT_PREFIX), dtype=bool)
    logger.info("%d mitochondrial genes (prefix %r)", int(mt.sum()), MT_PREFIX)
    _warn_if_no_mt(var, int(mt.sum()), params["max_pct_mt"], source)

    qc = _qc_pass(blocks, len(obs), mt, thresholds, check)
    removed = _removed_by_filter(qc, thresholds)
    for name, n in removed.items():
        logger.info("filter %s=%s removed %d cells", name, params[name], n)
    if not qc.keep.any():
        raise NAMInputError(
            f"no cells pass QC ({', '.join(f'{k}={v}' for k, v in thresholds.items())}) "
            f"out of {len(obs)}; removed by each filter: {removed}"
        )
    _log_individuals_lost(obs[individual_key], qc.keep)
    genes = qc.gene_cells_kept >= params["min_cells"]
    logger.info("filter min_cells=%d removed %d genes", params["min_cells"], int((~genes).sum()))
    if not genes.any():
        raise NAMInputError(f"no gene is detected in at least min_cells={params['min_cells']} cells")

    n_kept = int(qc.keep.sum())
    sink = sink(int(qc.gene_cells_kept[genes].sum()))
    total, total_sq = np.zeros(int(genes.sum())), np.zeros(int(genes.sum()))
    for counts, lognorm in _kept_blocks(blocks, qc.keep, genes, params["target_sum"]):
        sink.add(counts, lognorm)
        normalised = np.expm1(lognorm.data).astype(np.float64)
        total += np.bincount(lognorm.indices, weights=normalised, minlength=total.size)
        total_sq += np.bincount(lognorm.indices, weights=normalised**2, minlength=total.size)
    mean = total / n_kept
    variance = (total_sq / n_kept - mean**2) * (n_kept / max(n_kept - 1, 1))
    n_hvg = min(params["n_top_genes"], total.size)
    if n_hvg < params["n_top_genes"]:
        logger.info("n_top_genes=%d capped at the %d genes kept", params["n_top_genes"], n_hvg)
    hvg_table = _seurat_hvgs(mean, np.clip(variance, 0.0, None), n_hvg)
    hvg = hvg_table["highly_variable"].to_numpy()
    n_hvg = int(hvg.sum())

    n_pcs = max(1, min(params["n_pcs"], n_hvg - 1, n_kept - 1))
    if n_pcs < params["n_pcs"]:
        logger.warning("n_pcs=%d capped at %d (%d highly variable genes, %d cells)",
                       params["n_pcs"], n_pcs, n_hvg, n_kept)

    def hvg_chunks():
        return _dense_chunks(ln[:, hvg] for _, ln in _kept_blocks(blocks, qc.keep, genes,
                                                                  params["target_sum"]))

    n_rows, hvg_mean, gram = _column_moments(hvg_chunks(), n_hvg)
    pca = _pca_from_moments(n_rows, hvg_mean, gram, n_pcs)
    scores = _scores(hvg_chunks(), pca, n_kept)

    out_obs = obs.loc[qc.keep].copy()
    qc_columns = {
        "n_genes_by_counts": qc.n_genes_by_counts.astype(np.int32),
        "total_counts": qc.total_counts.astype(np.float32),
        "total_counts_mt": qc.total_counts_mt.astype(np.float32),
        "pct_counts_mt": qc.pct_counts_mt.astype(np.float32),
    }
    for name, values in qc_columns.items():
        out_obs[name] = values[qc.keep]
    n_sel = len(obs)
    out_var = pd.DataFrame({
        "mt": mt,
        "n_cells_by_counts": qc.gene_cells_kept,
        "mean_counts": (qc.gene_total / n_sel).astype(np.float32),
        "pct_dropout_by_counts": (100 * (1 - qc.gene_cells / n_sel)).astype(np.float32),
        "total_counts": qc.gene_total.astype(np.float32),
    }, index=var.index)[genes]
    for column in hvg_table.columns:
        out_var[column] = hvg_table[column].to_numpy()
    loadings = np.zeros((int(genes.sum()), n_pcs), dtype=np.float32)
    loadings[hvg] = pca["loadings"]
    summary = {
        "params": params,
        "n_cells_in": n_sel,
        "n_genes_in": int(genes.size),
        "cells_removed": removed,
        "genes_removed": {"min_cells": int((~genes).sum())},
        "n_cells_out": n_kept,
        "n_genes_out": int(genes.sum()),
        "n_mt_genes": int(mt.sum()),
        "n_highly_variable": n_hvg,
        "n_pcs": n_pcs,
    }
    uns = {
        "preprocess": summary,
        "pca": {"variance": pca["variance"], "variance_ratio": pca["variance_ratio"],
                "params": {"n_comps": n_pcs, "genes": "highly_variable", "scaled": True}},
        "hvg": {"flavor": "seurat"},
    }
    result = sink.finish(out_obs, out_var, {"X_pca": scores}, {"PCs": loadings}, uns)
    logger.info(
        "preprocess done in %.1f s: %d cells, %d genes, %d HVGs, %d PCs (%.1f %% of HVG variance)",
        time.perf_counter() - t0, n_kept, int(genes.sum()), n_hvg, n_pcs,
        100 * float(np.sum(pca["variance_ratio"])),
    )
    return result, summary


_DEFAULTS = dict(min_genes=200, min_cells=3, min_counts=500, max_pct_mt=20.0, n_top_genes=2000,
                 n_pcs=30, target_sum=1e4, seed=0)


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
    PCA of the HVGs scaled to unit variance. The cells are processed in row blocks, as by
    :func:`preprocess_h5ad`, which does the same for a file without loading it.

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
    params = dict(individual_key=individual_key, min_genes=min_genes, min_cells=min_cells,
                  min_counts=min_counts, max_pct_mt=max_pct_mt, n_top_genes=n_top_genes,
                  n_pcs=n_pcs, target_sum=target_sum, seed=seed)
    _check_individual_column(adata.obs, individual_key, "expression data")
    X = adata.X

    def blocks():
        for start in range(0, adata.n_obs, ROW_CHUNK):
            stop = min(start + ROW_CHUNK, adata.n_obs)
            block = X[start:stop]
            block = sp.csr_matrix(block if sp.issparse(block) else np.asarray(block),
                                  dtype=np.float32)
            yield np.arange(start, stop), block

    result, _ = _run(blocks, adata.obs, adata.var, "expression data", _MemorySink, params)
    return result


def preprocess_h5ad(
    path_counts,
    path_out,
    individual_key: str = "individual",
    individuals=None,
    counts_layer: str | None = None,
    chunk: int = ROW_CHUNK,
    **settings,
) -> dict:
    """:func:`preprocess` an .h5ad of raw counts into an .h5ad, streaming cells in row blocks.

    Memory is O(N + G + H^2 + chunk x G) for N cells, G genes and H HVGs: neither the counts
    nor the log-normalised matrix is ever held whole. The output is written block by block to
    a temporary file, renamed into place at the end (nothing half-written is left).

    Parameters
    ----------
    path_counts : str or Path
        .h5ad of raw UMI counts (validated block by block while QC metrics are computed).
    path_out : str or Path
        The output .h5ad, laid out as :func:`preprocess` returns it.
    individual_key : str
        ``obs`` column naming each cell's individual.
    individuals : sequence of str, optional
        Keep only the cells of these individuals (compared after stripping blanks).
    counts_layer : str or None
        Where the counts are (see :func:`read_cell_table`).
    chunk : int
        Cells read per block.
    **settings
        The thresholds and sizes of :func:`preprocess` (min_genes, ..., seed).

    Returns
    -------
    dict
        ``uns["preprocess"]`` of the output: parameters and what each filter removed.
    """
    from ..io import atomic_path

    params = {**_DEFAULTS, **settings, "individual_key": individual_key}
    with open_counts(path_counts, counts_layer) as counts:
        obs = _cell_table(counts, individual_key)
        var = counts.var.copy()
        var.index = _unique_index(var.index, "gene", counts.source)
        cells = None
        if individuals is not None:
            wanted = {str(i).strip() for i in individuals}
            cells = obs[individual_key].astype(str).str.strip().isin(wanted).to_numpy()
            logger.info("%d of %d cells belong to the %d individuals kept", int(cells.sum()),
                        cells.size, len(wanted))
            obs = obs.loc[cells]

        def blocks():
            return counts.iter_rows(cells, chunk)

        with atomic_path(path_out) as tmp:
            _, summary = _run(blocks, obs, var, counts.source, lambda nnz: _H5adSink(tmp, nnz), params,
                              check=_check_block(counts))
    return summary


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
            f"{_examples(adata.obsm.keys(), limit=20) or 'none'}"
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
