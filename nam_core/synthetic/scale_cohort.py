"""OneK1K-shaped cohorts of any size, written out of core: for benchmarks and the scale test.

The shape follows OneK1K (Yazar et al. 2022, Science 376:eabf3041): ~1,000 donors, ~1,270 cells
each on average (varying between donors), 33,538 genes, ~2,450 UMIs and ~810 detected genes per
cell. Cells are drawn as in :mod:`nam_core.synthetic.demo` (gamma-Poisson around the real PBMC
profiles of scanpy's pbmc68k_reduced, log-normal library sizes, mitochondrial genes, 3 % low
quality cells) plus a sparse background over the rest of the gene space (Zipf-distributed
gene weights), so the genes detected per cell and the non-zeros match the real data.

The counts are written block by block with h5py (:func:`anndata.io.sparse_dataset` ``append``),
so memory is O(block x genes) whatever the cohort's size; obs follows at the end. The PLINK
fileset of the same donors is written by the demo's writer.

With ``spec.n_pools`` > 0 the donors are sequenced in pools (:mod:`nam_core.synthetic.pools`):
each pool multiplies the library size of its cells and the mean of every profiled and
mitochondrial gene by its own log-normal factors (the Zipf background genes get the library
factor only), and ``obs["pool"]`` names each cell's pool.
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
from .base import CohortSpec
from .cohort_parts import (
    MEDIAN_LIBRARY,
    MT_GENES,
    ambient_rates,
    draw_individuals_and_cells,
    mito_weights,
)
from .pools import draw_pools
from .profiles import BASE_COMPOSITION, source_profiles
from .writers import write_plink, write_tables

__all__ = ["ONEK1K_COHORT", "ONEK1K_GENES", "make_scale_cohort"]

logger = logging.getLogger(__name__)

#: Genes in OneK1K's count matrix (Cell Ranger's GRCh38 gene space).
ONEK1K_GENES = 33_538
#: OneK1K's donors and mean cells per donor (1,293 x 982 is its 1.27M cells); the rest as the demo.
ONEK1K_COHORT = CohortSpec(n_individuals=982, mean_cells=1293)
_ONEK1K_MEDIAN_LIBRARY = 2450.0  # median UMIs per cell in OneK1K
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


def _block(rates, mt_weights, bg_weights, type_codes, library, mt_fraction, gene_dispersion,
           rng, gene_factor=None) -> sp.csr_matrix:
    """Counts of one block of cells: profiled genes, background genes, mitochondrial genes.

    ``gene_factor`` (n_cells, n_profiled + n_mt), optional: the pool shift of each cell's genes.
    """
    nuclear_umis = library * (1.0 - mt_fraction)
    profiled = (nuclear_umis * (1 - _BACKGROUND_SHARE))[:, None] * rates[type_codes]
    mito = (library * mt_fraction)[:, None] * mt_weights
    mu = np.hstack([profiled, mito])
    if gene_factor is not None:
        mu *= gene_factor
    lam = mu * rng.gamma(gene_dispersion, 1.0 / gene_dispersion, size=mu.shape)
    dense = sp.csr_matrix(rng.poisson(lam).astype(np.float32))
    background = _background_counts(rng.poisson(nuclear_umis * _BACKGROUND_SHARE), bg_weights, rng)
    block = sp.hstack([dense[:, : rates.shape[1]], background, dense[:, rates.shape[1]:]],
                      format="csr")
    block.indptr = block.indptr.astype(np.int64)
    block.indices = block.indices.astype(np.int64)
    return block


def make_scale_cohort(
    out_dir,
    spec: CohortSpec = ONEK1K_COHORT,
    n_genes: int = ONEK1K_GENES,
    individual_column: str = "donor_id",
    median_library: float = _ONEK1K_MEDIAN_LIBRARY,
) -> dict[str, Path]:
    """Write a OneK1K-shaped cohort (PLINK fileset, counts .h5ad, truth tables) out of core.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created if missing).
    spec : CohortSpec
        Donors, mean cells per donor (negative binomial, dispersion 5, at least 20), ancestries,
        SNPs, F_ST, noise and seed; :data:`ONEK1K_COHORT` by default.
    n_genes : int
        Genes in the count matrix, at least the profiled and mitochondrial genes (773).
    individual_column : str
        obs column naming each cell's donor (``donor_id`` as in CELLxGENE's OneK1K).
    median_library : float
        Median UMIs per healthy cell (2,450 in OneK1K; smaller makes quicker test cohorts).

    Returns
    -------
    dict of Path: ``bfile`` (PLINK prefix), ``counts`` (.h5ad, CSR float32 with int64 indices,
    lzf-compressed), ``truth_individuals`` (individual, ancestry, and pool with pools) and
    ``truth_cells`` (cell, individual, cell_type, low_quality, and pool with pools).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    profiles = source_profiles()
    n_profiled, n_mt = profiles.shape[1], len(MT_GENES)
    if n_genes < n_profiled + n_mt:
        raise NAMInputError(f"n_genes must be at least {n_profiled + n_mt}, got {n_genes}")
    iids = [f"D{j + 1:05d}" for j in range(spec.n_individuals)]
    types = profiles.index.to_numpy()
    cells = draw_individuals_and_cells(spec, np.array([BASE_COMPOSITION[t] for t in types]), rng)
    group, n_cells = cells.group, cells.n_cells
    library = cells.library * (median_library / MEDIAN_LIBRARY)
    pools = draw_pools(spec, cells.ancestry, n_profiled + n_mt)
    pool_of_cell = None if pools is None else pools.of_cells(group)
    if pools is not None:
        library = library * pools.library_factor[pool_of_cell]

    def gene_factor(sl):
        return None if pools is None else pools.gene_factor[pool_of_cell[sl]]
    rates = ambient_rates(profiles)
    mt_weights = mito_weights()
    bg_weights = _background_weights(n_genes - n_profiled - n_mt, rng)
    genes = [*profiles.columns, *(f"GENE{g + 1:05d}" for g in range(bg_weights.size)), *MT_GENES]

    cell_names = np.char.add(np.asarray(iids)[group].astype(str),
                             np.char.mod("_C%05d", np.concatenate([np.arange(n) for n in n_cells])))
    obs = pd.DataFrame({
        individual_column: pd.Categorical(np.asarray(iids)[group], categories=iids),
        "cell_type": pd.Categorical(types[cells.type_codes], categories=list(types)),
        "low_quality": cells.low_quality,
    }, index=pd.Index(cell_names, name="cell"))
    individuals = pd.DataFrame({"individual": iids, "ancestry": cells.ancestry})
    if pools is not None:
        obs["pool"] = pd.Categorical(np.asarray(pools.names)[pool_of_cell], categories=pools.names)
        individuals["pool"] = np.asarray(pools.names)[pools.pool]
    var = pd.DataFrame(index=pd.Index(genes, name="gene"))
    paths = {"bfile": out / "genotypes", "counts": out / "counts.h5ad",
             "truth_individuals": out / "truth_individuals.tsv",
             "truth_cells": out / "truth_cells.tsv"}
    write_plink(cells.genotypes, iids, paths["bfile"])
    with atomic_path(paths["counts"]) as tmp:
        nnz = _write_counts(tmp, obs, var, lambda sl: _block(
            rates, mt_weights, bg_weights, cells.type_codes[sl], library[sl],
            cells.mt_fraction[sl], spec.gene_dispersion, rng, gene_factor(sl)))
    write_tables({
        "truth_individuals": individuals,
        "truth_cells": obs.rename(columns={individual_column: "individual"}).reset_index(),
    }, paths)
    logger.info(
        "scale cohort written to %s in %.1f s: %d cells, %d genes, %d donors, %d non-zeros "
        "(%.0f per cell)", out, time.perf_counter() - t0, group.size, len(genes),
        spec.n_individuals, nnz, nnz / group.size,
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
