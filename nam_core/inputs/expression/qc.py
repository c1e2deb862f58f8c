"""Streamed QC, normalisation and highly variable genes of raw counts, one block of cells at a time.

Reproduces scanpy's ``calculate_qc_metrics``, the cell and gene filters, ``normalize_total`` with
``log1p`` and ``highly_variable_genes(flavor="seurat")`` from per-cell vectors (N,) and per-gene
sums (G,), so memory does not grow with the cells beyond those vectors and one block.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import examples
from .kernels import gene_detections, row_qc_sums, select_rows_columns

__all__ = [
    "MT_PREFIX", "Blocks", "CellQC", "kept_blocks", "kept_columns_lognormalised", "kept_counts",
    "log_individuals_lost", "qc_pass",
    "removed_by_filter", "seurat_hvgs", "warn_if_no_mt",
]

logger = logging.getLogger(__name__)

#: Gene-symbol prefix of mitochondrial genes (case-insensitive).
MT_PREFIX = "MT-"

_HVG_BINS = 20  # mean bins of the seurat dispersion normalisation (scanpy's default)

Blocks = Callable[[], Iterator[tuple[np.ndarray, sp.csr_matrix]]]


def _row_ids(block: sp.csr_matrix) -> np.ndarray:
    """Row of each stored value of a CSR block, (nnz,)."""
    return np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))


@dataclasses.dataclass
class CellQC:
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
        """Percentage (N,) of each cell's UMIs in mitochondrial genes (0 for an empty cell)."""
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


def qc_pass(blocks: Blocks, n_cells: int, mt: np.ndarray, thresholds: dict,
             check: Callable[[sp.csr_matrix], None] | None = None) -> CellQC:
    """One pass: per-cell QC metrics, the cell filters, and gene detection among kept cells."""
    n_genes_total = mt.size
    out = CellQC(np.zeros(n_cells, np.int64), np.zeros(n_cells), np.zeros(n_cells),
              np.zeros(n_genes_total), np.zeros(n_genes_total, np.int64),
              np.zeros(n_genes_total, np.int64), np.zeros(n_cells, bool))
    at = 0
    for _, block in blocks():
        if check is not None:
            check(block)
        n = block.shape[0]
        sl = slice(at, at + n)
        (out.n_genes_by_counts[sl], out.total_counts[sl], out.total_counts_mt[sl], gene_total,
         gene_detected) = row_qc_sums(block.data, block.indices, block.indptr, mt, n_genes_total)
        passes = _cell_filters(out.n_genes_by_counts[sl], out.total_counts[sl],
                               out.total_counts_mt[sl], **thresholds)
        keep = np.logical_and.reduce(list(passes.values()))
        out.keep[sl] = keep
        out.gene_total += gene_total
        out.gene_cells += gene_detected
        out.gene_cells_kept += gene_detections(block.data, block.indices, block.indptr, keep,
                                               n_genes_total)
        at += n
    return out


def removed_by_filter(qc: CellQC, thresholds: dict) -> dict[str, int]:
    """Cells removed by each filter, each counted once, by the first filter it fails."""
    passes = _cell_filters(qc.n_genes_by_counts, qc.total_counts, qc.total_counts_mt, **thresholds)
    keep = np.ones(qc.keep.size, dtype=bool)
    removed = {}
    for name, ok in passes.items():
        removed[name] = int((keep & ~ok).sum())
        keep &= ok
    return removed


def _lognormalise(counts: sp.csr_matrix, target_sum: float,
                  totals: np.ndarray | None = None) -> sp.csr_matrix:
    """``log1p(counts / total * target_sum)`` per cell, in float32 as scanpy computes it.

    ``totals`` (n,) float64 are the cells' totals when ``counts`` hold only some of the genes
    they are normalised over (default: the row sums of ``counts``).
    """
    rows = _row_ids(counts)
    if totals is None:
        totals = np.bincount(rows, weights=counts.data.astype(np.float64), minlength=counts.shape[0])
    factor = totals.astype(np.float32) / np.float32(target_sum)
    data = counts.data / factor[rows]
    np.log1p(data, out=data)
    return sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)


def _select(block: sp.csr_matrix, rows: np.ndarray, new_column: np.ndarray) -> sp.csr_matrix:
    """Rows ``rows`` (bool, (n,)) and the columns with ``new_column >= 0`` of a CSR block.

    ``new_column`` (G,) gives each kept column's index in the result and -1 for dropped ones;
    stored zeros are dropped too (:func:`.kernels.select_rows_columns`).
    """
    data, indices, indptr = select_rows_columns(block.data, block.indices, block.indptr,
                                                np.ascontiguousarray(rows, dtype=bool), new_column)
    out = sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, int(new_column.max()) + 1))
    out.sort_indices()
    return out


def kept_counts(blocks: Blocks, keep: np.ndarray, genes: np.ndarray) -> Iterator[sp.csr_matrix]:
    """Counts of the kept cells and genes, block by block (CSR, kept genes as columns)."""
    new_column = np.where(genes, np.cumsum(genes) - 1, -1)
    at = 0
    for _, block in blocks():
        n = block.shape[0]
        rows = keep[at : at + n]
        at += n
        if rows.any():
            yield _select(block, rows, new_column)


def kept_blocks(blocks: Blocks, keep: np.ndarray, genes: np.ndarray, target_sum: float):
    """Counts and log-normalised expression of the kept cells and genes, block by block."""
    for counts in kept_counts(blocks, keep, genes):
        yield counts, _lognormalise(counts, target_sum)


def kept_columns_lognormalised(blocks: Blocks, keep: np.ndarray, columns: np.ndarray,
                               target_sum: float, cell_totals: np.ndarray):
    """Log-normalised expression of the kept cells in some columns only, block by block.

    Parameters
    ----------
    blocks, keep
        As :func:`kept_counts`.
    columns : ndarray (G,) of bool
        The genes wanted (e.g. the HVGs among all genes); only their values are normalised.
    target_sum : float
    cell_totals : ndarray (N',) float64
        Each kept cell's total over the genes it is normalised over (the kept genes), in
        order: so the values equal those of :func:`kept_blocks` in these columns.

    Yields
    ------
    csr_matrix (n, columns.sum()) float32
    """
    at = 0
    for counts in kept_counts(blocks, keep, columns):
        n = counts.shape[0]
        yield _lognormalise(counts, target_sum, cell_totals[at:at + n])
        at += n


def seurat_hvgs(mean: np.ndarray, var: np.ndarray, n_top_genes: int) -> pd.DataFrame:
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



def warn_if_no_mt(var: pd.DataFrame, n_mt: int, max_pct_mt: float, source: str) -> None:
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
        source, MT_PREFIX, examples(var.index[:3], 3), max_pct_mt, hint,
    )



def log_individuals_lost(individuals: pd.Series, keep: np.ndarray) -> None:
    """Log individuals whose every cell failed QC (they will have no cells downstream)."""
    before = set(individuals.astype(str).unique())
    after = set(individuals[keep].astype(str).unique())
    lost = sorted(before - after)
    if lost:
        logger.warning(
            "QC removed every cell of %d individuals: %s", len(lost), examples(lost, 20)
        )


