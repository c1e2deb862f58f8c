"""Every table of the composition analysis of one fit: posterior, groups, differences and tests."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...errors import NAMInputError
from .adjust import Covariates
from .association import association_omnibus, genotype_association
from .bootstrap import bootstrap_compositions
from .counts import cell_counts, group_counts
from .frequentist import propeller_test
from .groups import cohort_cell_labels, fit_input_pcs, genotype_groups
from .posterior import (
    DEFAULT_NULL_LOG_RATIO,
    draw_compositions,
    group_draws,
    posterior_differences,
    posterior_summary,
)

__all__ = ["composition_tables"]

logger = logging.getLogger(__name__)


def composition_tables(
    model,
    counts: pd.DataFrame,
    pcs: pd.DataFrame,
    names: dict | None = None,
    n_draws: int = 4000,
    seed: int = 0,
    null_log_ratio: float = DEFAULT_NULL_LOG_RATIO,
    transform: str = "logit",
    inputs=None,
    atom_to_group: dict | None = None,
    covariates: pd.DataFrame | None = None,
    covariate_types: dict | None = None,
    lineages: dict | None = None,
    moderate_variance: bool = False,
    cluster_groups: dict | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of the composition analysis of one fit.

    ``posterior`` describes NAM's own clusters from q(u). The tests must not use the data twice
    (NAM's clusters are fitted to the compositions they would test), so they compare the
    genotype-only clusters of :func:`genotype_groups` and count each cell in its atom of
    :func:`cohort_cell_labels`; neither sees which cluster the individual's cells put it in.
    ``differences`` draws each group's mean composition from a Bayesian bootstrap over its
    individuals (:func:`bootstrap_compositions`), ``propeller`` tests the individuals'
    proportions and ``genotype`` regresses them on the genotype PCs; all three adjust for the
    donor covariates when given, and ``genotype_omnibus`` combines each term over cell types.

    Parameters
    ----------
    model : fitted NAM
    counts : DataFrame
        ``composition/cells_per_individual.tsv`` (the fit's labels; gives each individual's NAM
        cluster, and the test counts when ``inputs`` is None).
    pcs : DataFrame
        Column individual and the genotype PCs of the fit (``individuals.tsv``); the first
        ``q`` PC columns are used (q: the fit's x dimension) unless ``inputs`` gives x.
    names : dict or None
        Cell-type name of each cell cluster.
    n_draws, seed : int
        Monte Carlo draws (from q(u) and from the Bayesian bootstrap) and their seed.
    null_log_ratio : float
        Threshold of a null effect (:func:`posterior_differences`).
    transform : {"logit", "asin", "inverse_normal"}
        Scale of the per-individual proportions (propeller and genotype regression).
    inputs : FitInputs or None
        ``fit/inputs.npz`` (x, y, group, individuals). Without it the tests count cells by the
        fit's own labels, which see the individual's cluster (logged as a warning).
    atom_to_group : dict or None
        Atom (``C<l>``) -> cell type (``T<g>``, cell_types/groups.tsv). Given, every table is
        per cell type: a type's share in each draw and its count per individual are the sums
        over its atoms, and ``names`` names the types. None: per atom.
    covariates : DataFrame or None
        ``covariates/donors.tsv``: column individual, then the checked covariates (None or no
        covariate column: unadjusted tests).
    covariate_types : dict or None
        ``{column: "numeric" | "categorical"}`` of the covariates (config covariates.columns and
        obs_columns); a column without a type is numeric when it reads as numbers.
    lineages : dict or None
        Cell-type name -> lineage: the genotype association adds each type's share of its
        lineage (:func:`~.association.share_traits`).
    moderate_variance : bool
        The propeller-style tests moderate the residual variances across cell clusters
        (limma's eBayes; :func:`propeller_test`).
    cluster_groups : dict or None
        Cluster (``I<k>``) -> individual group (``individual_groups/groups.tsv``): the tests
        compare the genotype-only groups of these (:func:`genotype_groups`) rather than of the
        clusters, so two clusters that neither genotype nor cell types separate are one side.

    Returns
    -------
    dict with DataFrames ``posterior``, ``groups`` (individual, nam_cluster, cluster,
    probability: the grouping of the tests), ``differences``, ``propeller``, ``genotype``,
    ``genotype_omnibus`` and ``test_counts`` (the cells the tests counted: individual,
    cluster (genotype-only), cells per cell cluster).
    """
    adjust = Covariates(covariates, covariate_types) if covariates is not None else None
    if adjust:
        logger.info("composition tests adjusted for %s", adjust.names)
    nam_cluster = counts.set_index(counts["individual"].astype(str))["cluster"].astype(str)
    if inputs is not None:
        individuals = np.asarray(inputs.individuals, dtype=str)
        pcs = fit_input_pcs(inputs)
        labels = cohort_cell_labels(model, inputs.y, inputs.group)
        test_counts = cell_counts(labels, inputs.group, individuals,
                                  nam_cluster.reindex(individuals).to_numpy())
        logger.info("cohort cell labels: %d of %d cells change atom from the fit's labels",
                    int((labels != np.asarray(model.cell_labels_)).sum()), len(labels))
    else:
        logger.warning("no fit inputs: the tests count cells by the fit's labels, which depend "
                       "on the individual's cluster")
        n_x = np.asarray(model.m_x_).shape[1] if hasattr(model, "m_x_") else 0
        pc_cols = [c for c in pcs.columns if str(c).startswith("PC")][:n_x]
        pcs = pcs[["individual", *pc_cols]]
        test_counts = counts
    groups = genotype_groups(model, pcs, cluster_groups)
    groups.insert(1, "nam_cluster", groups["individual"].map(nam_cluster).to_numpy())
    own_group = groups["nam_cluster"].map(lambda c: (cluster_groups or {}).get(c, c))
    moved = int((groups["cluster"] != own_group).sum())
    logger.info("genotype-only clusters of the tests: %d of %d individuals differ from their NAM "
                "cluster (or its individual group); sizes %s", moved, len(groups),
                groups["cluster"].value_counts().sort_index().to_dict())
    cluster_of = groups.set_index("individual")["cluster"]
    by_genotype = test_counts.assign(
        cluster=test_counts["individual"].astype(str).map(cluster_of).to_numpy())
    if by_genotype["cluster"].isna().any():
        missing = by_genotype.loc[by_genotype["cluster"].isna(), "individual"].tolist()
        raise NAMInputError(f"{len(missing)} individuals have no genotype PCs: {missing[:5]}")
    draws = draw_compositions(model, n_draws=n_draws, seed=seed)
    if atom_to_group is not None:
        by_genotype = group_counts(by_genotype, atom_to_group)
        test_counts = group_counts(test_counts, atom_to_group)
        draws = group_draws(draws, atom_to_group)
    boot = bootstrap_compositions(by_genotype, n_draws=n_draws, seed=seed, covariates=adjust)
    genotype = genotype_association(test_counts, pcs, transform, names, covariates=adjust,
                                    lineages=lineages)
    tables = {
        "posterior": posterior_summary(draws, names),
        "groups": groups,
        "differences": posterior_differences(boot, boot["sizes"], null_log_ratio, names),
        "propeller": propeller_test(by_genotype, transform, names, covariates=adjust,
                                    moderate=moderate_variance),
        "genotype": genotype,
        "genotype_omnibus": association_omnibus(genotype),
        "test_counts": by_genotype,
    }
    for key in ("differences", "propeller", "genotype"):
        logger.info("%s: %d of %d tests called at FDR < 0.05", key,
                    int(tables[key]["called"].sum()), len(tables[key]))
    return tables
