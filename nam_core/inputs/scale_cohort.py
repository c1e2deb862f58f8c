"""OneK1K-shaped cohorts of any size, written out of core: for benchmarks and the scale test.

The shape follows OneK1K (Yazar et al. 2022, Science 376:eabf3041): ~1,000 donors, ~1,270 cells
each on average (varying between donors), 33,538 genes, ~2,450 UMIs and ~810 detected genes per
cell. Cells are drawn as in :mod:`nam_core.inputs.demo` (gamma-Poisson around the real PBMC
profiles of scanpy's pbmc68k_reduced, log-normal library sizes, mitochondrial genes, 3 % low
quality cells) plus a sparse background over the rest of the gene space (Zipf-distributed
gene weights), so the genes detected per cell and the non-zeros match the real data.

The counts are written block by block with h5py (:func:`anndata.io.sparse_dataset` ``append``),
so memory is O(block x genes) whatever the cohort's size; obs follows at the end. The PLINK
fileset of the same donors is written by the demo's writer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import NAMInputError
from ..io import atomic_path
from . import demo
from .ancestry import balding_nichols_genotypes

__all__ = ["make_scale_cohort", "ONEK1K_GENES"]

logger = logging.getLogger(__name__)

#: Genes in OneK1K's count matrix (Cell Ranger's GRCh38 gene space).
ONEK1K_GENES = 33_538
_MEDIAN_LIBRARY = 2450.0  # median UMIs per cell in OneK1K
_BACKGROUND_SHARE = 0.25  # share of a cell's nuclear UMIs outside the profiled genes
_ZIPF_EXPONENT = 1.0  # background gene weights ~ 1 / rank
_BLOCK_CELLS = 8192


def _background_weights(n_genes: int, rng: np.random.Generator) -> np.ndarray:
    """Zipf (1 / rank) weights of the background genes, in a random gene order; sums to 1."""
    weights = 1.0 / np.arange(1, n_genes + 1) ** _ZIPF_EXPONENT
    weights = rng.permutation(weights)
    return weights / weights.sum()


def _background_counts(totals: np.ndarray, weights: np.ndarray, rng: np.random.Generator):
    """Multinomial draws of ``totals[i]`` UMIs over the background genes, (n, B) CSR float32."""
    rows = np.repeat(np.arange(totals.size), totals)
    genes = rng.choice(weights.size, size=rows.size, p=weights)
    block = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, genes)),
                          shape=(totals.size, weights.size))
    block.sum_duplicates()
    return block


def _block(rates, mt_weights, bg_weights, type_codes, library, mt_fraction, rng) -> sp.csr_matrix:
    """Counts of one block of cells: profiled genes, background genes, mitochondrial genes."""
    nuclear_umis = library * (1.0 - mt_fraction)
    profiled = (nuclear_umis * (1 - _BACKGROUND_SHARE))[:, None] * rates[type_codes]
    mito = (library * mt_fraction)[:, None] * mt_weights
    mu = np.hstack([profiled, mito])
    lam = mu * rng.gamma(demo._GENE_DISPERSION, 1.0 / demo._GENE_DISPERSION, size=mu.shape)
    dense = sp.csr_matrix(rng.poisson(lam).astype(np.float32))
    background = _background_counts(rng.poisson(nuclear_umis * _BACKGROUND_SHARE), bg_weights, rng)
    block = sp.hstack([dense[:, : rates.shape[1]], background, dense[:, rates.shape[1]:]],
                      format="csr")
    block.indptr = block.indptr.astype(np.int64)
    block.indices = block.indices.astype(np.int64)
    return block


def make_scale_cohort(
    out_dir,
    n_individuals: int = 982,
    mean_cells: float = 1293,
    n_genes: int = ONEK1K_GENES,
    n_ancestries: int = 3,
    n_snps: int = 20_000,
    fst: float = 0.05,
    individual_column: str = "donor_id",
    median_library: float = _MEDIAN_LIBRARY,
    seed: int = 0,
) -> dict[str, Path]:
    """Write a OneK1K-shaped cohort (PLINK fileset, counts .h5ad, truth tables) out of core.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created if missing).
    n_individuals : int
        Donors (982 in OneK1K).
    mean_cells : float
        Mean cells per donor (negative binomial, dispersion 5, at least 20); 1,293 x 982 is
        OneK1K's 1.27M cells.
    n_genes : int
        Genes in the count matrix, at least the profiled and mitochondrial genes (773).
    n_ancestries, n_snps, fst, seed
        As :func:`nam_core.inputs.demo.make_demo_cohort`.
    individual_column : str
        obs column naming each cell's donor (``donor_id`` as in CELLxGENE's OneK1K).
    median_library : float
        Median UMIs per healthy cell (2,450 in OneK1K; smaller makes quicker test cohorts).

    Returns
    -------
    dict of Path: ``bfile`` (PLINK prefix), ``counts`` (.h5ad, CSR float32 with int64 indices,
    lzf-compressed), ``truth_individuals`` (individual, ancestry) and ``truth_cells`` (cell,
    individual, cell_type, low_quality).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    profiles = demo.source_profiles()
    n_profiled, n_mt = profiles.shape[1], len(demo.MT_GENES)
    if n_genes < n_profiled + n_mt:
        raise NAMInputError(f"n_genes must be at least {n_profiled + n_mt}, got {n_genes}")
    iids = [f"D{j + 1:05d}" for j in range(n_individuals)]
    ancestry = demo._ancestry_labels(n_individuals, n_ancestries, rng)
    genotypes, _ = balding_nichols_genotypes(ancestry, n_snps, fst, rng)

    types = profiles.index.to_numpy()
    base = np.array([demo.BASE_COMPOSITION[t] for t in types])
    omega = rng.gamma(demo._INDIVIDUAL_CONCENTRATION
                      * demo._ancestry_compositions(n_ancestries, base, rng)[ancestry])
    omega /= omega.sum(axis=1, keepdims=True)
    n_cells = demo._cells_per_individual(n_individuals, mean_cells, rng)
    group = np.repeat(np.arange(n_individuals), n_cells)
    type_codes = np.concatenate(
        [rng.choice(types.size, size=n, p=w) for n, w in zip(n_cells, omega, strict=True)]
    )
    library, mt_fraction, low_quality = demo._cell_quality(group.size, rng)
    library *= median_library / demo._MEDIAN_LIBRARY
    p = profiles.to_numpy(dtype=np.float64)
    rates = (1.0 - demo._AMBIENT) * p + demo._AMBIENT * p.mean(axis=0)
    mt_weights = np.fromiter(demo.MT_GENES.values(), dtype=np.float64)
    mt_weights /= mt_weights.sum()
    bg_weights = _background_weights(n_genes - n_profiled - n_mt, rng)
    genes = [*profiles.columns, *(f"GENE{g + 1:05d}" for g in range(bg_weights.size)),
             *demo.MT_GENES]

    cell_names = np.char.add(np.asarray(iids)[group].astype(str),
                             np.char.mod("_C%05d", np.concatenate([np.arange(n) for n in n_cells])))
    obs = pd.DataFrame({
        individual_column: pd.Categorical(np.asarray(iids)[group], categories=iids),
        "cell_type": pd.Categorical(types[type_codes], categories=list(types)),
        "low_quality": low_quality,
    }, index=pd.Index(cell_names, name="cell"))
    var = pd.DataFrame(index=pd.Index(genes, name="gene"))
    paths = {"bfile": out / "genotypes", "counts": out / "counts.h5ad",
             "truth_individuals": out / "truth_individuals.tsv",
             "truth_cells": out / "truth_cells.tsv"}
    demo._write_plink(genotypes, iids, paths["bfile"])
    with atomic_path(paths["counts"]) as tmp:
        nnz = _write_counts(tmp, obs, var, lambda sl: _block(
            rates, mt_weights, bg_weights, type_codes[sl], library[sl], mt_fraction[sl], rng))
    for key, table in (
        ("truth_individuals", pd.DataFrame({"individual": iids, "ancestry": ancestry})),
        ("truth_cells", obs.rename(columns={individual_column: "individual"}).reset_index()),
    ):
        with atomic_path(paths[key]) as tmp:
            table.to_csv(tmp, sep="\t", index=False)
    logger.info(
        "scale cohort written to %s in %.1f s: %d cells, %d genes, %d donors, %d non-zeros "
        "(%.0f per cell)", out, time.perf_counter() - t0, group.size, len(genes), n_individuals,
        nnz, nnz / group.size,
    )
    return paths


def _write_counts(path: Path, obs: pd.DataFrame, var: pd.DataFrame, draw) -> int:
    """Write an .h5ad whose X is appended block by block from ``draw(slice)``; returns nnz."""
    from anndata.io import sparse_dataset, write_elem

    n = len(obs)
    nnz = 0
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        for start in range(0, n, _BLOCK_CELLS):
            block = draw(slice(start, min(start + _BLOCK_CELLS, n)))
            nnz += block.nnz
            if start == 0:
                write_elem(f, "X", block, dataset_kwargs={"compression": "lzf"})
            else:
                sparse_dataset(f["X"]).append(block)
        for key, value in (("obs", obs), ("var", var), ("obsm", {}), ("varm", {}),
                           ("layers", {}), ("obsp", {}), ("varp", {}), ("uns", {})):
            write_elem(f, key, value)
    return nnz
