"""Co-clustering, merge alternatives, genotype homogeneity; cluster naming and the permutation test."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from nam_core.errors import NAMInputError
from nam_core.results import auroc
from nam_core.results import marker_permutation as mp
from nam_core.results import naming as nm
from nam_core.results import partition as pt


def test_coclustering_is_rho_rho_transpose():
    rho = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    m = pt.coclustering(rho)
    np.testing.assert_allclose(m, [[1, 0.5, 0], [0.5, 0.5, 0.5], [0, 0.5, 1]])
    order = pt.coclustering_order(pt.coclustering(np.repeat(np.eye(3), 4, axis=0)[::-1]))
    assert sorted(order) == list(range(12))


def test_alternatives_sorted_by_gap_with_near_ties():
    alternatives = [
        dict(search=0, keep=0, drop=2, n_clusters=2, elbo=-1000.0, accepted=True),
        dict(search=0, keep=0, drop=1, n_clusters=2, elbo=-1010.0, accepted=False),
        dict(search=1, keep=0, drop=1, n_clusters=1, elbo=-995.5, accepted=False),
    ]
    model = SimpleNamespace(elbo_=-995.0, alternatives_=alternatives)
    table, note = pt.alternatives_table(model, near_tie_nats=3.0)
    assert list(table.columns) == pt.ALTERNATIVE_COLUMNS
    # the accepted merge is the fit itself: left out; searches from 1, clusters as I-names
    assert list(table["gap_nats"]) == [0.5, 15.0]
    assert list(table["near_tie"]) == [True, False]
    assert list(table["search"]) == [2, 1]
    assert list(table["keep"]) == ["I1", "I1"] and list(table["drop"]) == ["I2", "I2"]
    assert "1 accepted merges left out" in note and "1 within 3 nats" in note


def test_alternatives_of_an_older_fit_are_an_empty_table():
    table, note = pt.alternatives_table(SimpleNamespace(elbo_=-1.0))
    assert table.empty and list(table.columns) == pt.ALTERNATIVE_COLUMNS
    assert "no alternatives_" in note
    with pytest.raises(NAMInputError, match="lack keys"):
        pt.alternatives_table(SimpleNamespace(elbo_=-1.0, alternatives_=[{"search": 0}]))


def test_genotype_homogeneity():
    x = np.array([[0.0], [0.0], [2.0], [2.0]])
    assert pt.genotype_homogeneity(x, [0, 0, 1, 1]) == pytest.approx(1.0)
    assert pt.genotype_homogeneity(x, [0, 1, 0, 1]) == pytest.approx(0.0)
    assert pt.genotype_homogeneity(x, [0, 0, 0, 0]) == pytest.approx(0.0)


def planted_cells(n_per=150, n_individuals=6, seed=0):
    """Three clusters with two marker genes each, plus noise genes; individuals mixed."""
    rng = np.random.default_rng(seed)
    n = 3 * n_per
    clusters = np.repeat(["C1", "C2", "C3"], n_per)
    X = rng.gamma(1.0, 1.0, size=(n, 30))
    for k in range(3):
        X[clusters == f"C{k + 1}", 2 * k: 2 * k + 2] += 3.0
    individuals = rng.integers(0, n_individuals, size=n).astype(str)
    genes = [f"G{g}" for g in range(30)]
    return X, clusters, individuals, genes


def test_cluster_auroc_agrees_with_sklearn():
    X, clusters, _, _ = planted_cells(n_per=40)
    names, codes = np.unique(clusters, return_inverse=True)
    auc = auroc.cluster_auroc(auroc.rank_matrix(X), codes, 3)
    for k in range(3):
        for g in (0, 2, 7):
            assert auc[k, g] == pytest.approx(roc_auc_score(codes == k, X[:, g]))


def test_clusters_named_by_their_markers_or_unassigned(tmp_path):
    X, clusters, _, genes = planted_cells()
    path = tmp_path / "markers.tsv"
    path.write_text("# test table\ncell_type\tgene\nA\tG0\nA\tG1\nB\tG2\nB\tG3\nZ\tG20\nZ\tG21\n"
                    "Absent\tNOPE\n")
    markers = nm.read_marker_table(path)
    names, codes = np.unique(clusters, return_inverse=True)
    auc = pd.DataFrame(auroc.cluster_auroc(auroc.rank_matrix(X), codes, 3), index=names, columns=genes)
    scores, used = nm.score_cell_types(auc, markers, min_markers=2)
    assert np.isnan(scores["Absent"]).all() and not used.set_index("cell_type").loc["Absent", "scored"]
    named = nm.name_clusters(scores).set_index("cluster")
    assert list(named["cell_type"]) == ["A", "B", nm.UNASSIGNED]
    assert named.loc["C1", "score"] > 0.9 and named.loc["C3", "score"] < nm.DEFAULT_MIN_SCORE
    assert list(nm.display_labels(["C1", "C3"], {"C1": "A"})) == ["C1 A", "C3"]


def test_a_type_with_two_of_its_markers_in_the_data_can_be_scored(tmp_path):
    """Type B lists four markers, two of them in the data: scored on those two with
    min_markers=2 (or on all four, the absent ones at chance); with one present it is not."""
    X, clusters, _, genes = planted_cells()
    names, codes = np.unique(clusters, return_inverse=True)
    auc = pd.DataFrame(auroc.cluster_auroc(auroc.rank_matrix(X), codes, 3), index=names, columns=genes)
    two = pd.DataFrame({"cell_type": ["B"] * 4, "gene": ["G2", "G3", "NOPE1", "NOPE2"]})
    assert np.isnan(nm.score_cell_types(auc, two)[0]["B"]).all()  # default: 3 needed
    scores, used = nm.score_cell_types(auc, two, min_markers=2)
    row = used.set_index("cell_type").loc["B"]
    assert row["scored"] and row["n_found"] == 2 and row["genes_found"] == "G2,G3"
    assert scores.loc["C2", "B"] == pytest.approx(auc.loc["C2", ["G2", "G3"]].mean())
    chance, _ = nm.score_cell_types(auc, two, min_markers=2, absent_as_chance=True)
    assert chance.loc["C2", "B"] == pytest.approx((auc.loc["C2", ["G2", "G3"]].sum() + 1.0) / 4)
    one = two.assign(gene=["G2", "NOPE0", "NOPE1", "NOPE2"])
    scores, used = nm.score_cell_types(auc, one, min_markers=2)
    assert np.isnan(scores["B"]).all() and not used.set_index("cell_type").loc["B", "scored"]


def test_marker_table_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("type\tgene\nA\tG0\n")
    with pytest.raises(NAMInputError, match="bad.tsv.*cell_type"):
        nm.read_marker_table(path)
    path.write_text("cell_type\tgene\nA\tG0\nA\tG0\n")
    with pytest.raises(NAMInputError, match="repeats G0 for A"):
        nm.read_marker_table(path)


def test_permutation_test_real_clusters_and_random_labelings():
    X, clusters, individuals, _ = planted_cells()
    ranks = auroc.rank_matrix(X)
    real = mp.marker_permutation_test(ranks, clusters, individuals, n_top=2, n_permutations=199,
                                      seed=0)
    assert (real["p_value"] < 0.01).all(), real
    again = mp.marker_permutation_test(ranks, clusters, individuals, n_top=2,
                                       n_permutations=199, seed=0)
    pd.testing.assert_frame_equal(real, again)
    rng = np.random.default_rng(1)
    pvalues = []
    for _ in range(10):  # random labelings: 10 x 3 clusters
        random_labels = rng.choice(["C1", "C2", "C3"], size=clusters.size)
        out = mp.marker_permutation_test(ranks, random_labels, individuals, n_top=2,
                                         n_permutations=99, seed=int(rng.integers(1 << 30)))
        pvalues.extend(out["p_value"])
    assert np.mean(np.asarray(pvalues) > 0.05) >= 0.9, pvalues


def test_batched_permutations_give_the_null_of_one_permutation_at_a_time(monkeypatch):
    X, clusters, individuals, _ = planted_cells()
    ranks = auroc.rank_matrix(X)
    batched = mp.marker_permutation_test(ranks, clusters, individuals, n_top=2, n_permutations=7,
                                         seed=3)
    monkeypatch.setattr(mp, "ROWS_PER_PRODUCT", 1)  # one permutation per product
    single = mp.marker_permutation_test(ranks, clusters, individuals, n_top=2, n_permutations=7,
                                        seed=3)
    pd.testing.assert_frame_equal(batched, single, rtol=1e-6)


def test_rank_matrix_equals_scipy_rankdata():
    from scipy.stats import rankdata

    X, *_ = planted_cells()
    tied = np.where(X > 1.0, np.round(X, 1), 0.0)  # zeros and ties, as in counts
    for values in (X, tied, sp.csr_matrix(tied)):
        dense = values.toarray() if sp.issparse(values) else values
        np.testing.assert_array_equal(auroc.rank_matrix(values),
                                      rankdata(dense, axis=0).astype(np.float32))


def test_demo_checks_against_a_hand_made_truth():
    from nam_core.results.checks import check_composition, true_differences

    # two individual clusters of two individuals; cell cluster C1 = type T (60% vs 20%), C2 = U
    shares = {"a": 0.6, "b": 0.6, "c": 0.2, "d": 0.2}
    rows = []
    for ind, share in shares.items():
        n_t = int(100 * share)
        rows += [(ind, "T", "C1")] * n_t + [(ind, "U", "C2")] * (100 - n_t)
    obs = pd.DataFrame(rows, columns=["individual", "cell_type", "nam_cell_cluster"])
    individuals = pd.DataFrame({"individual": list("abcd"), "cluster": ["I1", "I1", "I2", "I2"]})
    truth = true_differences(obs, individuals)
    assert set(truth["contrast"]) == {"I1 vs rest", "I2 vs rest"}
    truth = truth[truth["contrast"] == "I1 vs rest"].set_index("cell_cluster")
    assert truth.loc["C1", "true_effect"] == pytest.approx(0.4)
    assert truth.loc["C2", "cell_type"] == "U"
    differences = pd.DataFrame({"contrast": "I1 vs rest", "cell_cluster": ["C1", "C2"],
                                "effect": [0.4, -0.4], "lower": 0.0, "upper": 0.0,
                                "prob_null": 0.0, "fdr": [0.0, 0.2], "called": [True, False]})
    names = pd.DataFrame({"cluster": ["C1", "C2"], "cell_type": ["T", "U"], "share": 0.5})
    perm = pd.DataFrame({"cluster": ["C1", "C2"], "p_value": [0.001, 0.001]})
    evaluation, detail = check_composition(obs, individuals, differences, names, perm)
    evaluation = evaluation.set_index("metric")
    assert evaluation.loc["true_differences_called", "value"] == 0.25  # 1 of 4 in the table
    assert not evaluation.loc["true_differences_called", "pass"]
    assert evaluation.loc["names_match_truth", "pass"]
    assert detail["must_call"].all() and len(detail) == 4
    assert not detail.loc[detail["contrast"] == "I2 vs rest", "called"].any()  # not in the table
    assert "propeller_true_differences_called" not in evaluation.index
    # the propeller-style calls: C1 called (0.4), C2 (0.4) missed, and one call of a tiny difference
    propeller = pd.DataFrame({"contrast": ["I1 vs rest", "I1 vs rest", "all"],
                              "cell_cluster": ["C1", "C2", "C1"], "called": [True, False, True]})
    evaluation, detail = check_composition(obs, individuals, differences, names, perm,
                                           propeller=propeller)
    evaluation = evaluation.set_index("metric")
    assert evaluation.loc["propeller_true_differences_called", "value"] == 0.5
    assert evaluation.loc["propeller_calls_on_real_differences", "value"] == 1.0
    assert detail["propeller_called"].isna().sum() == 2  # I2 vs rest: not in its table
    # a third type V whose share is the same in both groups (true difference 0), called
    rows = []
    for ind, share in shares.items():
        n_t = int(100 * share)
        rows += [(ind, "T", "C1")] * n_t + [(ind, "V", "C3")] * 20 + [(ind, "U", "C2")] * (80 - n_t)
    obs3 = pd.DataFrame(rows, columns=["individual", "cell_type", "nam_cell_cluster"])
    names3 = pd.DataFrame({"cluster": ["C1", "C2", "C3"], "cell_type": ["T", "U", "V"], "share": 0.3})
    propeller = pd.DataFrame({"contrast": "I1 vs rest", "cell_cluster": ["C1", "C2", "C3"],
                              "called": [True, True, True]})
    evaluation, detail = check_composition(obs3, individuals, differences, names3, perm,
                                           propeller=propeller)
    assert detail.set_index(["contrast", "cell_cluster"]).loc[("I1 vs rest", "C3"), "true_effect"] == 0
    assert evaluation.set_index("metric").loc["propeller_calls_on_real_differences", "value"] == \
        pytest.approx(2 / 3)


def test_name_overrides_rename_by_hand_and_name_unknown_keys():
    from nam_core.results.naming import apply_name_overrides

    types = pd.DataFrame({"group": ["T1", "T2"], "cell_type": ["CD4 T", "CD14 Monocyte"],
                          "assigned": [True, True]})
    out = apply_name_overrides(types, {"T2": "CD16 Monocyte", "C9": "B"}, "group", "T")
    assert list(out["cell_type"]) == ["CD4 T", "CD16 Monocyte"]
    assert list(out["overridden"]) == [False, True]
    assert list(types["cell_type"]) == ["CD4 T", "CD14 Monocyte"]  # input left alone
    with pytest.raises(NAMInputError, match="T7 not among this run's groups"):
        apply_name_overrides(types, {"T7": "NK"}, "group", "T")


def test_the_shipped_marker_tables_read_and_name_their_types():
    """Both shipped tables parse; the OneK1K one holds the study's 14 labels, each with at least
    the default number of markers, so every label can be scored when its genes are present."""
    root = Path(__file__).resolve().parents[3] / "config"
    coarse = nm.read_marker_table(root / "cell_type_markers.tsv")
    onek1k = nm.read_marker_table(root / "onek1k_cell_type_markers.tsv")
    assert coarse["cell_type"].nunique() == 12
    counts = onek1k.groupby("cell_type").size()
    assert len(counts) == 14 and (counts >= nm.DEFAULT_MIN_MARKERS).all()
    assert {"CD4 NC", "CD4 SOX4", "CD8 S100B", "NK R", "Mono NC", "DC"} <= set(counts.index)
    assert onek1k["gene"].str.fullmatch(r"[A-Z0-9-]+").all()
