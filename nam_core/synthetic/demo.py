"""A small, realistic demo cohort: PLINK genotypes plus single-cell UMI counts for the same people.

Individuals belong to ``n_ancestries`` populations. Their genotypes are Balding-Nichols draws
(:func:`nam_core.synthetic.ancestry.balding_nichols_genotypes`) and their cell-type compositions
depend on their population, so both layers of NAM carry the population structure. Cells are drawn
from a gamma-Poisson (negative binomial) model around real immune cell-type expression profiles
taken from scanpy's bundled ``pbmc68k_reduced`` data set (no download,
:mod:`nam_core.synthetic.profiles`), with log-normal library sizes, a few synthetic mitochondrial
genes and a small share of low-quality cells for QC to remove
(:mod:`nam_core.synthetic.cohort_parts`).

Files written by :func:`make_demo_cohort` (all atomically):

* ``genotypes.bed/.bim/.fam``: PLINK 1 binary, IID = FID = ``IND0001``...
* ``counts.h5ad``: raw counts (CSR float32), ``obs["individual"]``, ``obs["cell_type"]`` and,
  when the cohort is sequenced in pools (``CohortSpec.n_pools`` > 0), ``obs["pool"]``.
* ``truth_individuals.tsv``: individual, ancestry (and pool, with pools).
* ``truth_cells.tsv``: cell (= obs name), individual, cell_type, low_quality.
* ``known_markers.tsv``: cell_type, gene, rank, log2_specificity.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from ..io import atomic_path
from .base import CohortSpec
from .cohort_parts import (
    LOW_QUALITY_RATE,
    MEDIAN_LIBRARY,
    MT_GENES,
    ambient_rates,
    draw_counts,
    draw_individuals_and_cells,
)
from .pools import draw_pools
from .profiles import BASE_COMPOSITION, known_markers, source_profiles
from .writers import write_plink, write_tables

__all__ = ["DEMO_COHORT", "demo_anndata", "draw_demo_cohort", "make_demo_cohort", "pool_column"]

logger = logging.getLogger(__name__)

#: The demo cohort of the workflow's default config: 200 individuals, 3 ancestries, ~100 cells
#: each, 20,000 SNPs (the defaults of :class:`~nam_core.synthetic.base.CohortSpec`).
DEMO_COHORT = CohortSpec()


def draw_demo_cohort(spec: CohortSpec = DEMO_COHORT) -> dict:
    """Draw a demo cohort in memory (what :func:`make_demo_cohort` writes).

    Parameters
    ----------
    spec : CohortSpec
        The cohort's parameters (:data:`DEMO_COHORT` by default).

    Returns
    -------
    dict with ``iids`` (J,) list of str, ``ancestry`` (J,) int, ``genotypes`` (J, n_snps) minor
    allele counts, ``group`` (N,) int, ``type_codes`` (N,) int, ``types`` (n_types,) str,
    ``n_cells`` (J,) int, ``library`` (N,) UMIs, ``low_quality`` (N,) bool, ``counts``
    csr_matrix (N, n_genes) float32, ``genes`` list of str, ``profiles`` (DataFrame) and
    ``pools`` (:class:`~nam_core.synthetic.pools.Pools`, None without pools; ``library`` then
    includes each pool's library factor).
    """
    rng = np.random.default_rng(spec.seed)
    width = max(4, len(str(spec.n_individuals)))
    iids = [f"IND{j + 1:0{width}d}" for j in range(spec.n_individuals)]
    profiles = source_profiles()
    types = profiles.index.to_numpy()
    base = np.array([BASE_COMPOSITION[t] for t in types])
    cells = draw_individuals_and_cells(spec, base, rng)
    pools = draw_pools(spec, cells.ancestry, profiles.shape[1] + len(MT_GENES))
    library, gene_factor, pool = cells.library, None, None
    if pools is not None:
        pool = pools.of_cells(cells.group)
        library, gene_factor = library * pools.library_factor[pool], pools.gene_factor
    counts = draw_counts(ambient_rates(profiles), cells.type_codes, library,
                         cells.mt_fraction, rng, spec.gene_dispersion, gene_factor, pool)
    return {
        "iids": iids, "ancestry": cells.ancestry, "genotypes": cells.genotypes,
        "group": cells.group, "type_codes": cells.type_codes, "types": types,
        "n_cells": cells.n_cells, "library": library, "low_quality": cells.low_quality,
        "counts": counts, "genes": [*profiles.columns, *MT_GENES], "profiles": profiles,
        "pools": pools,
    }


def demo_anndata(cohort: dict) -> ad.AnnData:
    """The raw-count AnnData of a drawn cohort (:func:`draw_demo_cohort`).

    Returns
    -------
    AnnData (N, n_genes): CSR float32 counts; ``obs`` individual, cell_type, low_quality (and
    pool, for a cohort with pools), indexed by cell name ``<IID>_C0001``...
    """
    iids, types = cohort["iids"], cohort["types"]
    cell_names = [
        f"{iid}_C{i + 1:04d}" for iid, n in zip(iids, cohort["n_cells"], strict=True)
        for i in range(n)
    ]
    obs = pd.DataFrame(
        {
            "individual": pd.Categorical(np.asarray(iids)[cohort["group"]], categories=iids),
            "cell_type": pd.Categorical(types[cohort["type_codes"]], categories=list(types)),
            "low_quality": cohort["low_quality"],
        },
        index=pd.Index(cell_names, name="cell"),
    )
    pools = cohort.get("pools")
    if pools is not None:
        obs["pool"] = pool_column(pools, cohort["group"])
    var = pd.DataFrame(index=pd.Index(cohort["genes"], name="gene"))
    return ad.AnnData(X=cohort["counts"], obs=obs, var=var)


def pool_column(pools, group: np.ndarray) -> pd.Categorical:
    """The ``obs["pool"]`` column: each cell's pool name, (N,) categorical over every pool."""
    return pd.Categorical(np.asarray(pools.names)[pools.of_cells(group)], categories=pools.names)


def make_demo_cohort(out_dir, spec: CohortSpec = DEMO_COHORT) -> dict[str, Path]:
    """Write a demo cohort (genotypes, UMI counts and truth tables) to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created if missing).
    spec : CohortSpec
        The cohort's parameters (:data:`DEMO_COHORT` by default); IIDs are ``IND0001``...
        (FID = IID) and the same seed writes identical files.

    Returns
    -------
    dict with keys ``bfile`` (PLINK prefix, no extension), ``counts``, ``truth_individuals``,
    ``truth_cells``, ``known_markers``, each a Path.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    logger.info(
        "demo cohort: %d individuals, %d ancestries, ~%g cells each, %d SNPs, Fst %g, seed %d, "
        "library sdlog %g, gene dispersion %g", spec.n_individuals, spec.n_ancestries,
        spec.mean_cells, spec.n_snps, spec.fst, spec.seed, spec.library_sdlog,
        spec.gene_dispersion,
    )
    cohort = draw_demo_cohort(spec)
    out.mkdir(parents=True, exist_ok=True)
    iids, ancestry, profiles = cohort["iids"], cohort["ancestry"], cohort["profiles"]
    adata = demo_anndata(cohort)
    individuals = pd.DataFrame({"individual": iids, "ancestry": ancestry})
    adata.uns["demo"] = {
        "n_individuals": spec.n_individuals, "n_ancestries": spec.n_ancestries,
        "mean_cells": spec.mean_cells, "n_snps": spec.n_snps, "fst": spec.fst, "seed": spec.seed,
        "median_library": MEDIAN_LIBRARY, "gene_dispersion": spec.gene_dispersion,
        "low_quality_rate": LOW_QUALITY_RATE, "library_sdlog": spec.library_sdlog,
    }
    if cohort["pools"] is not None:  # recorded only with pools: a cohort without is unchanged
        adata.uns["demo"].update(n_pools=spec.n_pools, pool_shift_sd=spec.pool_shift_sd,
                                 pool_confounding=spec.pool_confounding)
        individuals["pool"] = np.asarray(cohort["pools"].names)[cohort["pools"].pool]

    paths = {
        "bfile": out / "genotypes",
        "counts": out / "counts.h5ad",
        "truth_individuals": out / "truth_individuals.tsv",
        "truth_cells": out / "truth_cells.tsv",
        "known_markers": out / "known_markers.tsv",
    }
    write_plink(cohort["genotypes"], iids, paths["bfile"])
    with atomic_path(paths["counts"]) as tmp:
        adata.write_h5ad(tmp, compression="lzf")
    write_tables({
        "truth_individuals": individuals,
        "truth_cells": adata.obs.reset_index()[["cell", "individual", "cell_type", "low_quality"]],
        "known_markers": known_markers(profiles),
    }, paths)
    logger.info(
        "demo cohort written to %s in %.1f s: %d cells (%d low quality), %d genes, %s cells per "
        "ancestry", out, time.perf_counter() - t0, cohort["group"].size,
        int(cohort["low_quality"].sum()), adata.n_vars,
        np.bincount(ancestry[cohort["group"]], minlength=spec.n_ancestries).tolist(),
    )
    return paths
