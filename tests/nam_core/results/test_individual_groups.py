"""Individual groups: clusters that neither genotype nor cell-type shares separate are joined."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from scipy.spatial.distance import mahalanobis

from nam_core.errors import NAMInputError
from nam_core.io import write_tsv
from nam_core.results import individual_groups as ig

ROOT = Path(__file__).resolve().parents[3]


def _cohort(rng, means, shares, n=80, q=4):
    """Individuals around each mean (genotype PCs, sd 1) with Dirichlet type shares around each
    share vector; one cluster I<k+1> per mean."""
    pcs, share_rows, clusters = [], [], []
    for k, (mean, share) in enumerate(zip(means, shares, strict=True)):
        pcs.append(rng.normal(size=(n, q)) + np.asarray(mean, dtype=float))
        share_rows.append(rng.dirichlet(200 * np.asarray(share, dtype=float), size=n))
        clusters += [f"I{k + 1}"] * n
    return np.vstack(pcs), np.array(clusters), np.vstack(share_rows)


def test_an_ancestry_split_in_two_is_joined_and_ancestries_are_kept():
    rng = np.random.default_rng(0)
    shares = [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.3, 0.3, 0.4], [0.3, 0.3, 0.4]]
    means = [[0, 0, 0, 0], [0, 0, 0, 0], [8, 0, 0, 0], [8, 0, 0, 0]]
    pcs, clusters, shares = _cohort(rng, means, shares)
    groups = ig.group_individual_clusters(pcs, clusters, shares)
    assert groups.cluster_to_group == {"I1": "I1+I2", "I2": "I1+I2", "I3": "I3+I4", "I4": "I3+I4"}
    table = groups.table.set_index("cluster")
    assert (table["joined"] == "yes").all()
    assert (table["genotype_error"] > 0.3).all() and (table["share_difference"] < 0.02).all()


def test_same_genotype_with_different_cell_type_shares_stays_apart():
    rng = np.random.default_rng(1)
    pcs, clusters, shares = _cohort(rng, [[0, 0, 0, 0]] * 2, [[0.5, 0.3, 0.2], [0.4, 0.3, 0.3]])
    groups = ig.group_individual_clusters(pcs, clusters, shares)
    assert groups.cluster_to_group == {"I1": "I1", "I2": "I2"}
    row = groups.table.set_index("cluster").loc["I1"]
    assert row["genotype_error"] > 0.3 and row["share_difference"] == pytest.approx(0.1, abs=0.02)
    assert row["joined"] == "no"


def test_different_genotype_with_the_same_shares_stays_apart():
    rng = np.random.default_rng(2)
    pcs, clusters, shares = _cohort(rng, [[0, 0, 0, 0], [4, 0, 0, 0]], [[0.5, 0.5]] * 2)
    groups = ig.group_individual_clusters(pcs, clusters, shares)
    assert len(set(groups.cluster_to_group.values())) == 2  # error Phi(-2) = 0.023 < 0.1


def test_genotype_error_against_scipy_mahalanobis():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(45, 3)) + [1.0, 0.5, 0.0]
    pooled = (np.cov(a.T) * 29 + np.cov(b.T) * 44) / 73
    distance = mahalanobis(a.mean(0), b.mean(0), np.linalg.inv(pooled))
    error, difference = ig.pair_statistics(a, b, np.full((30, 2), 0.5), np.tile([0.4, 0.6], (45, 1)))
    assert error == pytest.approx(stats.norm.cdf(-distance / 2), rel=1e-10)
    assert difference == pytest.approx(0.1)


def test_too_few_individuals_for_a_covariance_are_never_joined():
    pcs = np.zeros((4, 5))
    error, _ = ig.pair_statistics(pcs[:2], pcs[2:], np.ones((2, 1)), np.ones((2, 1)))
    assert np.isnan(error)
    groups = ig.group_individual_clusters(pcs, np.array(["I1", "I1", "I2", "I2"]), np.ones((4, 1)))
    assert groups.cluster_to_group == {"I1": "I1", "I2": "I2"}


def test_no_chain_joins_two_clusters_that_differ():
    """I1 ~ I2 and I2 ~ I3 in genotype, but I1 and I3 differ: they never share a group."""
    rng = np.random.default_rng(4)
    pcs, clusters, shares = _cohort(rng, [[0, 0], [1.5, 0], [3.0, 0]], [[0.5, 0.5]] * 3, n=200, q=2)
    assert ig.pair_statistics(pcs[:200], pcs[200:400], shares[:200], shares[200:400])[0] > 0.1
    groups = ig.group_individual_clusters(pcs, clusters, shares)
    assert groups.cluster_to_group["I1"] != groups.cluster_to_group["I3"]


def test_one_cluster_is_one_group_with_an_empty_comparison(tmp_path):
    rng = np.random.default_rng(5)
    pcs, clusters, shares = _cohort(rng, [[0, 0, 0, 0]], [[0.5, 0.5]])
    groups = ig.group_individual_clusters(pcs, clusters, shares)
    assert groups.cluster_to_group == {"I1": "I1"}
    write_tsv(groups.table, tmp_path / "groups.tsv", missing=ig.TABLE_MISSING)


def test_bad_inputs_are_named():
    with pytest.raises(NAMInputError, match="pcs contain NaN"):
        ig.group_individual_clusters(np.full((2, 2), np.nan), ["I1", "I2"], np.ones((2, 1)))
    with pytest.raises(NAMInputError, match="one row per individual"):
        ig.group_individual_clusters(np.zeros((3, 2)), ["I1", "I2"], np.ones((3, 1)))
    with pytest.raises(NAMInputError, match="not in the grouping"):
        ig.group_individual_clusters(np.zeros((1, 2)), ["I1"], np.ones((1, 1))).groups_of(["I9"])


def test_group_cohort_reads_the_workflow_tables():
    rng = np.random.default_rng(6)
    pcs, clusters, _ = _cohort(rng, [[0, 0], [0, 0], [9, 0]], [[0.5, 0.5]] * 3, n=40, q=2)
    ids = [f"D{j:03d}" for j in range(len(clusters))]
    individuals = pd.DataFrame({"individual": ids, "cluster": clusters,
                                "PC1": pcs[:, 0], "PC2": pcs[:, 1]})
    atoms = rng.multinomial(100, [0.2, 0.3, 0.5], size=len(ids))  # C1 and C2 are one type
    counts = pd.DataFrame({"individual": ids, "cluster": clusters, "C1": atoms[:, 0],
                           "C2": atoms[:, 1], "C3": atoms[:, 2]})
    atoms[:40, :2] = atoms[:40, [1, 0]]  # I1 and I2 differ in atoms, not in types
    counts.loc[:39, ["C1", "C2"]] = atoms[:40, :2]
    groups, members = ig.group_cohort(individuals, counts.iloc[::-1], {"C1": "T1", "C2": "T1", "C3": "T2"})
    assert list(members["individual"]) == ids
    assert groups.cluster_to_group == {"I1": "I1+I2", "I2": "I1+I2", "I3": "I3"}
    with pytest.raises(NAMInputError, match=r"no row for individuals \['D000'\]"):
        ig.group_cohort(individuals, counts.iloc[1:], {"C1": "T1", "C2": "T1", "C3": "T2"})
    with pytest.raises(NAMInputError, match="no genotype PC columns"):
        ig.group_cohort(individuals[["individual", "cluster"]], counts, {"C1": "T1", "C2": "T1", "C3": "T2"})


def test_defaults_are_the_config_defaults():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())["individual_groups"]
    assert config == {"min_genotype_error": ig.MIN_GENOTYPE_ERROR,
                      "max_share_difference": ig.MAX_SHARE_DIFFERENCE}
