"""Which cell clusters differ between individual clusters: posterior, differences and tests.

* NAM's own clusters, described (:func:`draw_compositions`, :func:`posterior_summary`): Monte
  Carlo draws of each individual cluster's cell-cluster weights omega_k from q(u)
  (``docs/model.md``: the Beta sticks of U5), their means and 95% credible intervals. These are
  not tested: q(u) pools a cluster's cells as one multinomial (no spread between individuals),
  and the clusters were fitted to the compositions a test would compare.
* The tests (``docs/model.md``, section 12) compare the genotype-only groups of
  :func:`genotype_groups` (each individual's cluster given its genotype alone) and count each
  cell in its atom of :func:`cohort_cell_labels` (weights shared by the whole cohort), so
  neither grouping nor cell counts see which cluster an individual's cells put it in; only cell
  clusters averaging at least :data:`MIN_MEAN_CELLS` per individual are tested.
  - :func:`bootstrap_compositions` with :func:`posterior_differences`: a Bayesian bootstrap over
    each group's individuals, per cell cluster the difference and log-ratio between groups
    with sccomp's posterior probability of a null effect (pH0) and Bayesian FDR;
  - :func:`propeller_test`, as propeller (Phipson et al. 2022) does it: per-individual
    proportions, a logit, arcsine-square-root or inverse-normal transform, a linear model of
    the group indicators (t-tests, and an F-test across groups), Benjamini-Hochberg FDR;
  - :func:`genotype_association`: per cell type (share of all cells, and of its lineage),
    least squares of the transformed share on the genotype PCs (PLINK2-glm-like rows), with
    :func:`association_omnibus` across types.
  All three adjust for the donor covariates (:class:`Covariates`) when the config names them.
"""

from .adjust import Covariates
from .analysis import composition_tables
from .association import association_omnibus, genotype_association, share_traits
from .bootstrap import bootstrap_compositions
from .contrasts import contrasts
from .counts import MIN_MEAN_CELLS, cell_counts, group_counts, tested_cell_clusters
from .frequentist import propeller_test, transform_proportions
from .groups import cohort_cell_labels, genotype_groups
from .posterior import (
    DEFAULT_NULL_LOG_RATIO,
    bayesian_fdr,
    draw_compositions,
    group_draws,
    posterior_differences,
    posterior_summary,
)

__all__ = [
    "composition_tables",
    "DEFAULT_NULL_LOG_RATIO",
    "MIN_MEAN_CELLS",
    "tested_cell_clusters",
    "draw_compositions",
    "genotype_groups",
    "cohort_cell_labels",
    "cell_counts",
    "group_counts",
    "group_draws",
    "bootstrap_compositions",
    "posterior_summary",
    "contrasts",
    "posterior_differences",
    "bayesian_fdr",
    "transform_proportions",
    "propeller_test",
    "genotype_association",
    "association_omnibus",
    "share_traits",
    "Covariates",
]
