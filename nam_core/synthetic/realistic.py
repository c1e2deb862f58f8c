"""The "realistic counts" scenario: NB counts around real PBMC profiles -> scanpy -> PCs.

Cells are drawn as the demo cohort draws them (:func:`nam_core.synthetic.demo.draw_demo_cohort`:
gamma-Poisson counts around six cell-type profiles of scanpy's bundled ``pbmc68k_reduced``,
log-normal library sizes, mitochondrial genes, 3 % low-quality cells), preprocessed exactly as
the workflow does (:func:`nam_core.inputs.expression.preprocess`: QC, normalisation, log1p, HVGs,
PCA) and reduced to the inputs every method of :mod:`nam_core.study.methods` takes. Genotypes
are the demo's Balding-Nichols draws reduced to ``q`` PCs, so the individual clusters are the
ancestry groups.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..inputs.batch import regress_out_library
from ..inputs.expression import preprocess
from .base import CohortSpec, SimulatedData, genotype_pcs
from .demo import demo_anndata, draw_demo_cohort

__all__ = ["REALISTIC_COHORT", "regress_out_library", "simulate_realistic_counts"]

logger = logging.getLogger(__name__)

#: The scenario's default cohort: 300 donors, ~150 cells each, 2,000 SNPs; the rest as the demo.
REALISTIC_COHORT = CohortSpec(n_individuals=300, mean_cells=150, n_snps=2000)


def simulate_realistic_counts(
    spec: CohortSpec = REALISTIC_COHORT,
    n_pcs: int = 10,
    q: int = 3,
    n_top_genes: int = 500,
    target_sum: float = 1000.0,
    regress_library: bool = False,
    normalisation: str = "log1p",
) -> SimulatedData:
    """Draw NB counts, preprocess them as the workflow does and return (X, Y, group, truth).

    Parameters
    ----------
    spec : CohortSpec
        The cohort (:func:`nam_core.synthetic.demo.draw_demo_cohort`); its seed also seeds the
        preprocessing. :data:`REALISTIC_COHORT` by default.
    n_pcs : int
        Expression PCs p of Y.
    q : int
        Genotype PCs of X.
    n_top_genes : int
        Highly variable genes behind the expression PCA (the workflow config's 500).
    target_sum : float
        UMIs per cell after ``normalize_total`` (the workflow config's 1000; scanpy's own
        default is 1e4). The other QC settings are those of the workflow config, which are
        :func:`~nam_core.inputs.expression.preprocess`'s defaults.
    regress_library : bool
        Regress the log library size out of the PCs (:func:`regress_out_library`, through
        :func:`~nam_core.inputs.expression.preprocess` as the workflow's
        ``expression.regress_library``): a low library moves a cell in PC space, and NAM
        otherwise gives a large type's low-library cells an atom of their own (README, "Cell
        clusters against Leiden").
    normalisation : {"log1p", "pearson_residuals"}
        The workflow's ``expression.normalisation``: what the HVGs and the PCA are computed on.

    Returns
    -------
    SimulatedData
        X (J, q), Y (N', p) of the cells kept by QC, group (N',), individual_labels (J,) = the
        ancestry groups, cell_labels (N',) = the true cell types, composition_labels =
        individual_labels, and params.
    """
    t0 = time.perf_counter()
    cohort = draw_demo_cohort(spec)
    adata = preprocess(
        demo_anndata(cohort), n_pcs=n_pcs, n_top_genes=n_top_genes, target_sum=target_sum,
        seed=spec.seed, normalisation=normalisation, regress_library=regress_library,
    )
    iids = np.asarray(cohort["iids"])
    index = {iid: j for j, iid in enumerate(iids)}
    group = adata.obs["individual"].astype(str).map(index).to_numpy(dtype=np.int64)
    types = list(cohort["types"])
    cell_labels = adata.obs["cell_type"].astype(str).map(types.index).to_numpy(dtype=np.int64)
    X = genotype_pcs(cohort["genotypes"].astype(np.float64), q)
    ancestry = np.asarray(cohort["ancestry"])
    params = {
        "n_individuals": spec.n_individuals, "mean_cells": spec.mean_cells,
        "n_ancestries": spec.n_ancestries, "n_pcs": n_pcs, "q": q, "n_snps": spec.n_snps,
        "fst": spec.fst, "library_sdlog": spec.library_sdlog,
        "gene_dispersion": spec.gene_dispersion, "n_top_genes": n_top_genes,
        "target_sum": target_sum, "regress_library": regress_library,
        "normalisation": normalisation, "seed": spec.seed,
    }
    Y = np.asarray(adata.obsm["X_pca"], dtype=np.float64)
    logger.info(
        "realistic counts: %d individuals, %d of %d cells after QC, %d expression PCs, in %.1f s",
        spec.n_individuals, group.size, cohort["group"].size, adata.obsm["X_pca"].shape[1],
        time.perf_counter() - t0,
    )
    return SimulatedData(
        X=X, Y=Y, group=group,
        individual_labels=ancestry, cell_labels=cell_labels, composition_labels=ancestry,
        params=params,
    )
