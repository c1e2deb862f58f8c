"""The preprocessing pipeline: QC, normalisation, HVGs and expression PCs, in row blocks.

The cell-level vectors y of NAM are the expression principal components written here to
``obsm["X_pca"]`` (docs/model.md, section 1).

Preprocessing streams the cells in row blocks (:mod:`nam_core.inputs.h5ad`), so its memory does
not grow with the number of cells: it holds per-cell QC vectors (N,), per-gene moments (G,), the
HVG covariance (H, H) and one block of rows. It reproduces scanpy's ``calculate_qc_metrics``,
``normalize_total``, ``log1p`` and ``highly_variable_genes(flavor="seurat")`` followed by an
exact standardised PCA; ``tests/nam_core/inputs/test_expression.py`` checks the equality against scanpy.
The option ``normalisation="pearson_residuals"`` replaces the HVGs and the PCA input by scanpy's
analytic Pearson residuals, streamed as well (:mod:`.pearson`, tested in ``test_pearson.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import closing
from typing import NamedTuple

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import NAMInputError
from ..batch import BatchSettings, check_batch_column, correct_pcs, regress_out_library
from ..counts_file import ROW_CHUNK, CountsFile, open_counts
from .kernels import kept_moments
from .passes import Replay, release_freed_memory, with_progress
from .pca import column_moments, pca_from_moments, pca_scores, row_chunks
from .pearson import PEARSON_THETA, pearson_hvgs, residual_chunks, residual_variances
from .qc import (
    MT_PREFIX,
    Blocks,
    kept_blocks,
    kept_columns_lognormalised,
    kept_counts,
    log_individuals_lost,
    qc_pass,
    removed_by_filter,
    seurat_hvgs,
    warn_if_no_mt,
)
from .reading import check_individual_column, unique_index, validated_cell_table
from .sinks import H5adSink, MemorySink

__all__ = ["preprocess", "preprocess_h5ad"]

logger = logging.getLogger(__name__)


def _check_block(counts: CountsFile) -> Callable[[sp.csr_matrix], None]:
    """A cheap per-block check; on a bad value, the full report of ``validate_values``."""

    def check(block: sp.csr_matrix) -> None:
        data = block.data
        if not (np.isfinite(data).all() and (data >= 0).all() and (data == np.round(data)).all()):
            counts.validate_values()

    return check


class _Moments(NamedTuple):
    """Per-gene sums over the kept cells (G',) and each kept cell's total over kept genes (N',)."""

    total: np.ndarray  # normalised expression
    total_sq: np.ndarray
    counts: np.ndarray  # raw counts
    counts_sq: np.ndarray
    cell_totals: np.ndarray


def _stream_kept(blocks: Blocks, keep, genes, target_sum: float, sink) -> _Moments:
    """One pass over the kept cells: write them to ``sink`` and sum the per-gene moments."""
    n_genes = int(genes.sum())
    m = _Moments(*(np.zeros(n_genes) for _ in range(4)), np.zeros(int(keep.sum())))
    at = 0
    for counts, lognorm in kept_blocks(blocks, keep, genes, target_sum):
        sink.add(counts, lognorm)
        normalised = np.expm1(lognorm.data)  # float32, as scanpy's expm1 of its X
        total, total_sq, raw, raw_sq, m.cell_totals[at : at + counts.shape[0]] = kept_moments(
            counts.data, normalised, counts.indices, counts.indptr, n_genes)
        m.total[:] += total
        m.total_sq[:] += total_sq
        m.counts[:] += raw
        m.counts_sq[:] += raw_sq
        at += counts.shape[0]
    return m


#: Memory for the HVG columns of the kept cells (CSR), read once for the PCA's moments and its
#: scores; a larger cohort reads them twice. Kept at 6 bytes a value (float32, uint16 column
#: indices): 109 values per cell for 2,000 HVGs in the generated 4.84M-cell cohort (3.2 GB).
#: Half the 8 GB a job may take at 5M cells; freed before the batch correction, so the two do
#: not add up.
HVG_CACHE_BYTES = 4 * 1024**3


def _log1p_input(blocks: Blocks, keep, genes, params: dict, m: _Moments, n_hvg: int):
    """Seurat HVGs of the log-normalised data, and its HVG columns in CSR chunks (scaled)."""
    n = int(keep.sum())
    mean = m.total / n
    variance = (m.total_sq / n - mean**2) * (n / max(n - 1, 1))
    hvg_table = seurat_hvgs(mean, np.clip(variance, 0.0, None), n_hvg)
    hvg = hvg_table["highly_variable"].to_numpy()

    hvg_of_all = np.zeros(genes.size, dtype=bool)
    hvg_of_all[np.flatnonzero(genes)[hvg]] = True

    def hvg_blocks():  # only the HVGs' values are normalised, by the totals over kept genes
        return kept_columns_lognormalised(blocks, keep, hvg_of_all, params["target_sum"],
                                          m.cell_totals)

    replay = Replay(hvg_blocks, HVG_CACHE_BYTES)
    return hvg_table, lambda: row_chunks(replay()), {"values": "log1p", "scaled": True}


def _pearson_input(blocks: Blocks, keep, genes, m: _Moments, n_hvg: int):
    """Pearson-residual HVGs, and the HVGs' residuals in dense chunks (centred, not scaled).

    Two passes over the counts: the residual variance of every gene, then each cell's total
    over the HVGs, on which the HVGs' residuals are recomputed (scanpy's convention).
    """
    t0 = time.perf_counter()
    n = int(keep.sum())
    residual_var = residual_variances(kept_counts(blocks, keep, genes), m.cell_totals, m.counts,
                                      PEARSON_THETA)
    hvg_table = pearson_hvgs(m.counts, m.counts_sq, n, residual_var, n_hvg)
    hvg = np.flatnonzero(hvg_table["highly_variable"].to_numpy())
    hvg_cell_totals = np.concatenate([np.asarray(c[:, hvg].sum(axis=1, dtype=np.float64)).ravel()
                                      for c in kept_counts(blocks, keep, genes)])
    gene_p = m.counts[hvg] / m.counts[hvg].sum()
    logger.info("Pearson residual variances of %d genes in %.1f s (%d distinct library sizes); "
                "%d cells without counts in the %d HVGs", residual_var.size,
                time.perf_counter() - t0, np.unique(m.cell_totals).size,
                int((hvg_cell_totals == 0).sum()), hvg.size)

    def hvg_chunks():
        return residual_chunks(kept_counts(blocks, keep, genes), hvg, hvg_cell_totals, gene_p,
                               PEARSON_THETA)

    info = {"values": "pearson_residuals", "scaled": False, "theta": PEARSON_THETA,
            "clip": float(np.sqrt(n)), "library_size": "over the highly variable genes"}
    return hvg_table, hvg_chunks, info


def _run(blocks: Blocks, obs: pd.DataFrame, var: pd.DataFrame, source: str, sink, params: dict,
         check=None):
    """The streamed pipeline over the cells yielded by ``blocks`` (in ``obs`` order).

    ``sink(nnz)`` makes the writer of the output once the number of values to write is known.
    """
    t0 = time.perf_counter()
    blocks = with_progress(blocks, len(obs))
    individual_key = params["individual_key"]
    thresholds = {k: params[k] for k in ("min_genes", "min_counts", "max_pct_mt")}
    logger.info("preprocess: %d cells, %d genes; %s", len(obs), len(var), params)
    mt = np.asarray(var.index.astype(str).str.upper().str.startswith(MT_PREFIX), dtype=bool)
    logger.info("%d mitochondrial genes (prefix %r)", int(mt.sum()), MT_PREFIX)
    warn_if_no_mt(var, int(mt.sum()), params["max_pct_mt"], source)

    qc = qc_pass(blocks, len(obs), mt, thresholds, check)
    removed = removed_by_filter(qc, thresholds)
    for name, n in removed.items():
        logger.info("filter %s=%s removed %d cells", name, params[name], n)
    if not qc.keep.any():
        raise NAMInputError(
            f"no cells pass QC ({', '.join(f'{k}={v}' for k, v in thresholds.items())}) "
            f"out of {len(obs)}; removed by each filter: {removed}"
        )
    log_individuals_lost(obs[individual_key], qc.keep)
    genes = qc.gene_cells_kept >= params["min_cells"]
    logger.info("filter min_cells=%d removed %d genes", params["min_cells"], int((~genes).sum()))
    if not genes.any():
        raise NAMInputError(f"no gene is detected in at least min_cells={params['min_cells']} cells")

    n_kept = int(qc.keep.sum())
    with closing(sink(int(qc.gene_cells_kept[genes].sum()))) as sink:  # its writer stops on errors
        moments = _stream_kept(blocks, qc.keep, genes, params["target_sum"], sink)
        n_hvg = min(params["n_top_genes"], moments.total.size)
        if n_hvg < params["n_top_genes"]:
            logger.info("n_top_genes=%d capped at the %d genes kept", params["n_top_genes"], n_hvg)
        normalisation = params.get("normalisation", "log1p")
        if normalisation == "pearson_residuals":
            hvg_table, hvg_chunks, pca_input = _pearson_input(blocks, qc.keep, genes, moments, n_hvg)
        else:
            hvg_table, hvg_chunks, pca_input = _log1p_input(blocks, qc.keep, genes, params, moments,
                                                            n_hvg)
        hvg = hvg_table["highly_variable"].to_numpy()
        n_hvg = int(hvg.sum())

        n_pcs = max(1, min(params["n_pcs"], n_hvg - 1, n_kept - 1))
        if n_pcs < params["n_pcs"]:
            logger.warning("n_pcs=%d capped at %d (%d highly variable genes, %d cells)",
                           params["n_pcs"], n_pcs, n_hvg, n_kept)

        n_rows, hvg_mean, gram = column_moments(hvg_chunks(), n_hvg)
        pca = pca_from_moments(n_rows, hvg_mean, gram, n_pcs, scale=pca_input["scaled"])
        scores = pca_scores(hvg_chunks(), pca, n_kept)
        del hvg_chunks  # the HVG values kept for the scores: freed before Harmony
        release_freed_memory()
        if params.get("regress_library"):
            scores = regress_out_library(scores, qc.total_counts[qc.keep]).astype(np.float32)
            logger.info("log library size regressed out of the %d PCs", n_pcs)

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
            "normalisation": normalisation,
            "pca_input": pca_input,
            "X": "log1p(normalize_total(counts, target_sum))",
            "regress_library": bool(params.get("regress_library", False)),
        }
        uns = {
            "preprocess": summary,
            "pca": {"variance": pca["variance"], "variance_ratio": pca["variance_ratio"],
                    "params": {"n_comps": n_pcs, "genes": "highly_variable",
                               "scaled": pca_input["scaled"]}},
            "hvg": {"flavor": "pearson_residuals" if normalisation == "pearson_residuals"
                    else "seurat"},
        }
        obsm = {"X_pca": scores}
        if params.get("batch_key"):
            corrected, summary["batch_correction"] = correct_pcs(
                scores, out_obs[params["batch_key"]].to_numpy(), out_obs["total_counts"].to_numpy(),
                BatchSettings(**(params.get("harmony") or {})), params.get("threads", 1))
            obsm = {"X_pca": corrected, "X_pca_uncorrected": scores}
        result = sink.finish(out_obs, out_var, obsm, {"PCs": loadings}, uns)
        logger.info(
            "preprocess done in %.1f s: %d cells, %d genes, %d HVGs, %d PCs (%.1f %% of HVG variance)",
            time.perf_counter() - t0, n_kept, int(genes.sum()), n_hvg, n_pcs,
            100 * float(np.sum(pca["variance_ratio"])),
        )
        return result, summary


_DEFAULTS = dict(min_genes=200, min_cells=3, min_counts=500, max_pct_mt=20.0, n_top_genes=2000,
                 n_pcs=30, target_sum=1e4, seed=0, normalisation="log1p", regress_library=False,
                 keep_counts=True)

#: Values of the ``normalisation`` setting.
NORMALISATIONS = ("log1p", "pearson_residuals")


def _check_settings(params: dict) -> None:
    """Raise on an unknown normalisation before any pass over the cells."""
    if params.get("normalisation", "log1p") not in NORMALISATIONS:
        raise NAMInputError(f"expression normalisation must be one of {', '.join(NORMALISATIONS)}; "
                            f"got {params['normalisation']!r}")


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
    batch_key: str | None = None,
    harmony: dict | None = None,
    normalisation: str = "log1p",
    regress_library: bool = False,
) -> ad.AnnData:
    """QC-filter, normalise, select highly variable genes and compute expression PCs.

    Steps: QC metrics (mitochondrial genes = names starting with ``MT-``); drop cells with fewer
    than ``min_genes`` detected genes, fewer than ``min_counts`` UMIs or more than
    ``max_pct_mt`` % mitochondrial UMIs (in that order); drop genes detected in fewer than
    ``min_cells`` kept cells; keep raw counts in ``layers["counts"]``; ``normalize_total`` to
    ``target_sum`` and ``log1p`` (into ``X``). With ``normalisation="log1p"``: ``n_top_genes``
    highly variable genes (flavor "seurat") and the PCA of their log-normalised values scaled to
    unit variance. With ``"pearson_residuals"``: the genes of largest analytic Pearson residual
    variance (scanpy's flavor "pearson_residuals", theta 100, clip sqrt(N)) and the centred PCA
    of their residuals (:mod:`.pearson`); ``X`` stays log-normalised, for the markers. The cells are processed in row blocks, as by
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
    batch_key : str or None
        obs column of each cell's batch (e.g. ``pool``): the PCs are corrected by
        :func:`nam_core.inputs.batch.correct_pcs` into ``obsm["X_pca"]``, the originals kept in
        ``obsm["X_pca_uncorrected"]``. None: no correction.
    harmony : dict or None
        Fields of :class:`nam_core.inputs.batch.BatchSettings`.
    normalisation : {"log1p", "pearson_residuals"}
        What the HVGs and the PCA are computed on (above).
    regress_library : bool
        Regress the centred log library size (``total_counts``) out of the PCs
        (:func:`nam_core.inputs.batch.regress_out_library`), before any batch correction.

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
                  n_pcs=n_pcs, target_sum=target_sum, seed=seed, batch_key=batch_key,
                  harmony=harmony, normalisation=normalisation, regress_library=regress_library)
    params = {k: v for k, v in params.items() if v is not None}  # .h5ad uns cannot hold None
    _check_settings(params)
    check_individual_column(adata.obs, individual_key, "expression data")
    if batch_key:
        check_batch_column(adata.obs, batch_key, "expression data")
    X = adata.X

    def blocks():
        for start in range(0, adata.n_obs, ROW_CHUNK):
            stop = min(start + ROW_CHUNK, adata.n_obs)
            block = X[start:stop]
            block = sp.csr_matrix(block if sp.issparse(block) else np.asarray(block),
                                  dtype=np.float32)
            yield np.arange(start, stop), block

    result, _ = _run(blocks, adata.obs, adata.var, "expression data", MemorySink, params)
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

    Memory is O(N + G + H^2 + chunk x G) for N cells, G genes and H HVGs, plus the HVG values of
    the kept cells (up to :data:`HVG_CACHE_BYTES`; 2 % of the values of 10x PBMCs) or a 32 MB
    table for Pearson residuals: neither the counts nor the normalised matrix is ever held whole. The output is written block by block to
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
        The settings of :func:`preprocess` (min_genes, ..., seed, normalisation,
        regress_library), and ``keep_counts``: False leaves ``layers["counts"]`` out of the
        output (half its size; the raw counts stay in ``path_counts``).

    Returns
    -------
    dict
        ``uns["preprocess"]`` of the output: parameters and what each filter removed.
    """
    from ...io import atomic_path

    params = {**_DEFAULTS, **settings, "individual_key": individual_key}
    params = {k: v for k, v in params.items() if v is not None}  # .h5ad uns cannot hold None
    _check_settings(params)
    keep_counts = params.pop("keep_counts")  # where the output goes, not how cells are processed
    with open_counts(path_counts, counts_layer) as counts:
        obs = validated_cell_table(counts, individual_key)
        if params.get("batch_key"):
            check_batch_column(obs, params["batch_key"], counts.source)
        var = counts.var.copy()
        var.index = unique_index(var.index, "gene", counts.source)
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
            def sink(nnz):
                return H5adSink(tmp, nnz, keep_counts)

            _, summary = _run(blocks, obs, var, counts.source, sink, params,
                              check=_check_block(counts))
    return summary
