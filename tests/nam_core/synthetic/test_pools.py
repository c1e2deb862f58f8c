"""Sequencing pools in the generators: assignment, shifts, and the pool column written out."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from nam_core.errors import NAMInputError
from nam_core.synthetic.ancestry import ancestry_labels
from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.demo import draw_demo_cohort, make_demo_cohort
from nam_core.synthetic.pools import assign_pools, draw_pools, pools_per_ancestry
from nam_core.synthetic.scale_cohort import make_scale_cohort

TINY = dict(n_individuals=12, n_ancestries=2, mean_cells=30, n_snps=200, seed=5)
POOLED = dict(n_individuals=60, n_ancestries=3, mean_cells=80, n_snps=200, seed=2, n_pools=6)


def _majority_share(pool, ancestry):
    """Mean over pools of the share of the pool's donors from its most common ancestry."""
    table = pd.crosstab(pool, ancestry).to_numpy()
    return float((table.max(1) / table.sum(1)).mean())


def test_independent_pools_are_balanced_and_ignore_ancestry():
    rng = np.random.default_rng(0)
    ancestry = ancestry_labels(300, 3, rng)
    pool = assign_pools(ancestry, 24, 0.0, rng)
    sizes = np.bincount(pool, minlength=24)
    assert sizes.min() >= 12 and sizes.max() <= 13
    assert abs(adjusted_rand_score(ancestry, pool)) < 0.02
    assert _majority_share(pool, ancestry) < 0.8


def test_confounded_pools_follow_ancestry():
    rng = np.random.default_rng(0)
    ancestry = ancestry_labels(300, 3, rng)
    per = pools_per_ancestry(ancestry, 24)
    assert per.sum() == 24 and per.min() >= 1
    assert per.tolist() == sorted(per.tolist(), reverse=True)  # sizes 3:2:1 -> pools 12:8:4
    pool = assign_pools(ancestry, 24, 0.9, rng)
    assert _majority_share(pool, ancestry) > 0.8
    assert np.bincount(pool, minlength=24).min() >= 5


def test_no_pools_draws_the_cohort_of_before_and_pools_change_only_the_counts():
    plain = draw_demo_cohort(CohortSpec(**TINY))
    assert plain["pools"] is None
    pooled = draw_demo_cohort(CohortSpec(**TINY, n_pools=3))
    for key in ("ancestry", "group", "type_codes", "low_quality"):
        np.testing.assert_array_equal(plain[key], pooled[key])
    np.testing.assert_array_equal(plain["genotypes"], pooled["genotypes"])
    assert (plain["counts"] != pooled["counts"]).nnz > 0


def test_pool_shifts_reach_library_and_genes():
    spec = CohortSpec(**POOLED, pool_shift_sd=0.5)
    cohort = draw_demo_cohort(spec)
    pools = cohort["pools"]
    cell_pool = pools.of_cells(cohort["group"])
    healthy = ~cohort["low_quality"]
    counts = cohort["counts"].tocsr()
    umis = np.asarray(counts.sum(axis=1)).ravel()
    mean_log_umis = [np.log(umis[healthy & (cell_pool == k)]).mean() for k in range(6)]
    # Every gene's mean moves too, so the UMIs follow the library factor times the gene factors'
    # mean; the library factor alone carries most of it.
    expected = np.log(pools.library_factor)
    assert np.corrcoef(mean_log_umis, expected)[0, 1] > 0.8
    # Within one cell type, a gene's mean per pool follows that pool's gene factor.
    t = np.bincount(cohort["type_codes"]).argmax()
    cells = healthy & (cohort["type_codes"] == t)
    norm = counts[cells].multiply(1.0 / umis[cells][:, None]).tocsr()
    means = np.stack([np.asarray(norm[cell_pool[cells] == k].mean(0)).ravel() for k in range(6)])
    expressed = means.mean(0) > 1e-3
    log_ratio = np.log(means[:, expressed] + 1e-9) - np.log(means[:, expressed].mean(0) + 1e-9)
    factor = np.log(pools.gene_factor[:, expressed])
    factor -= factor.mean(0)
    assert np.corrcoef(log_ratio.ravel(), factor.ravel())[0, 1] > 0.5


def test_pool_column_written_to_demo_files(tmp_path):
    paths = make_demo_cohort(tmp_path, CohortSpec(**POOLED, pool_confounding=0.9))
    obs = ad.read_h5ad(paths["counts"], backed="r").obs
    assert obs["pool"].dtype == "category" and set(obs["pool"].cat.categories) == {
        f"P0{k}" for k in range(1, 7)}
    truth = pd.read_csv(paths["truth_individuals"], sep="\t")
    pool_of_individual = obs.groupby("individual", observed=True)["pool"].agg(
        lambda s: s.unique().tolist())
    assert all(len(v) == 1 for v in pool_of_individual)  # a donor is in one pool
    assert truth.set_index("individual")["pool"].to_dict() == {
        k: v[0] for k, v in pool_of_individual.items()}
    assert _majority_share(truth["pool"], truth["ancestry"]) > 0.8


def test_no_pool_column_without_pools(tmp_path):
    paths = make_demo_cohort(tmp_path, CohortSpec(**TINY))
    assert "pool" not in ad.read_h5ad(paths["counts"], backed="r").obs
    assert "pool" not in pd.read_csv(paths["truth_individuals"], sep="\t")


def test_scale_cohort_with_pools(tmp_path):
    spec = CohortSpec(n_individuals=20, mean_cells=30, n_snps=100, seed=1, n_pools=4)
    paths = make_scale_cohort(tmp_path, spec, n_genes=1000, median_library=500)
    obs = ad.read_h5ad(paths["counts"], backed="r").obs
    expected = draw_pools(spec, pd.read_csv(paths["truth_individuals"], sep="\t")["ancestry"]
                          .to_numpy(), 10)
    truth = pd.read_csv(paths["truth_individuals"], sep="\t")
    np.testing.assert_array_equal(truth["pool"], np.asarray(expected.names)[expected.pool])
    assert obs.groupby("donor_id", observed=True)["pool"].nunique().max() == 1


@pytest.mark.parametrize("kwargs", [
    dict(n_individuals=10, n_pools=11), dict(n_pools=-1), dict(n_pools=4, pool_shift_sd=-0.1),
    dict(n_pools=4, pool_confounding=1.5), dict(n_ancestries=3, n_pools=2, pool_confounding=0.5),
])
def test_bad_pool_parameters(kwargs):
    with pytest.raises(NAMInputError):
        CohortSpec(**kwargs)
