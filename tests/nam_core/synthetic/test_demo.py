import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from pandas_plink import read_plink1_bin

from nam_core.errors import NAMInputError
from nam_core.synthetic.base import CohortSpec, genotype_pcs
from nam_core.synthetic.cohort_parts import MT_GENES
from nam_core.synthetic.demo import draw_demo_cohort, make_demo_cohort
from nam_core.synthetic.profiles import known_markers, source_profiles

SMALL = dict(n_individuals=30, n_ancestries=3, mean_cells=60, n_snps=1500, fst=0.05)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_demo_cohort(tmp_path_factory.mktemp("demo"), CohortSpec(seed=1, **SMALL))


def _read_genotypes(bfile):
    G = read_plink1_bin(str(bfile) + ".bed", verbose=False)
    return G, np.asarray(G.values)


def _loo_nearest_centroid_accuracy(features, labels):
    """Leave-one-out nearest-centroid accuracy of ``labels`` from ``features`` (J, d)."""
    hits = 0
    for j in range(len(labels)):
        rest = np.arange(len(labels)) != j
        classes = np.unique(labels[rest])
        centroids = np.stack([features[rest & (labels == c)].mean(0) for c in classes])
        hits += classes[np.argmin(((centroids - features[j]) ** 2).sum(1))] == labels[j]
    return hits / len(labels)


def test_files_written_and_readable(cohort):
    assert set(cohort) == {"bfile", "counts", "truth_individuals", "truth_cells", "known_markers"}
    for ext in (".bed", ".bim", ".fam"):
        assert cohort["bfile"].with_name(cohort["bfile"].name + ext).is_file()
    # no temporary files left behind
    assert not [p for p in cohort["counts"].parent.iterdir() if p.name.startswith(".")]

    G, values = _read_genotypes(cohort["bfile"])
    assert values.shape == (SMALL["n_individuals"], SMALL["n_snps"])
    assert set(np.unique(values)) <= {0.0, 1.0, 2.0}
    iids = list(G.iid.values)
    assert iids == list(G.fid.values)
    assert iids[:2] == ["IND0001", "IND0002"]

    adata = ad.read_h5ad(cohort["counts"])
    assert sp.issparse(adata.X) and adata.X.format == "csr"
    data = adata.X.data
    assert np.all(data >= 0) and np.array_equal(data, np.round(data))
    assert set(adata.obs["individual"].astype(str)) == set(iids)
    assert {"individual", "cell_type"} <= set(adata.obs.columns)
    assert set(MT_GENES) <= set(adata.var_names)
    assert adata.var_names.is_unique and adata.obs_names.is_unique

    truth_ind = pd.read_csv(cohort["truth_individuals"], sep="\t")
    assert list(truth_ind.columns) == ["individual", "ancestry"]
    assert truth_ind["individual"].tolist() == iids
    assert sorted(truth_ind["ancestry"].unique()) == [0, 1, 2]

    truth_cells = pd.read_csv(cohort["truth_cells"], sep="\t")
    assert truth_cells["cell"].tolist() == adata.obs_names.tolist()
    assert (truth_cells["individual"].to_numpy() == adata.obs["individual"].astype(str)).all()
    assert (truth_cells["cell_type"].to_numpy() == adata.obs["cell_type"].astype(str)).all()

    counts_per_individual = truth_cells["individual"].value_counts()
    assert counts_per_individual.min() >= 20


def test_known_markers_table(cohort):
    known = pd.read_csv(cohort["known_markers"], sep="\t")
    assert {"cell_type", "gene"} <= set(known.columns)
    types = source_profiles().index
    assert 6 <= len(types) <= 8
    assert set(known["cell_type"]) == set(types)
    assert (known.groupby("cell_type").size() >= 5).all()
    assert not known["gene"].duplicated().any()  # each marker belongs to one type
    adata = ad.read_h5ad(cohort["counts"], backed="r")
    assert set(known["gene"]) <= set(adata.var_names)
    adata.file.close()


def test_known_markers_are_specific():
    profiles = source_profiles()
    assert np.allclose(profiles.sum(axis=1), 1.0)
    table = known_markers(profiles, n_markers=3)
    assert set(table["cell_type"]) == set(profiles.index)  # every type has markers to check
    for cell_type, genes in table.groupby("cell_type")["gene"]:
        for gene in genes:
            assert profiles[gene].idxmax() == cell_type


def test_deterministic_per_seed(tmp_path, cohort):
    tiny = dict(SMALL, n_individuals=12, mean_cells=25, n_snps=200)
    a = make_demo_cohort(tmp_path / "a", CohortSpec(seed=3, **tiny))
    b = make_demo_cohort(tmp_path / "b", CohortSpec(seed=3, **tiny))
    c = make_demo_cohort(tmp_path / "c", CohortSpec(seed=4, **tiny))
    xa, xb, xc = (ad.read_h5ad(p["counts"]) for p in (a, b, c))
    assert (xa.X != xb.X).nnz == 0
    pd.testing.assert_frame_equal(xa.obs, xb.obs)
    assert xa.shape != xc.shape or (xa.X != xc.X).nnz > 0
    assert np.array_equal(_read_genotypes(a["bfile"])[1], _read_genotypes(b["bfile"])[1])
    assert not np.array_equal(_read_genotypes(a["bfile"])[1], _read_genotypes(c["bfile"])[1])
    for key in ("truth_individuals", "truth_cells", "known_markers", "bfile"):
        suffix = ".bim" if key == "bfile" else ""
        assert (a[key].parent / (a[key].name + suffix)).read_bytes() == (
            b[key].parent / (b[key].name + suffix)
        ).read_bytes()


def test_proportions_differ_by_ancestry(cohort):
    truth_cells = pd.read_csv(cohort["truth_cells"], sep="\t")
    truth_ind = pd.read_csv(cohort["truth_individuals"], sep="\t").set_index("individual")
    props = pd.crosstab(truth_cells["individual"], truth_cells["cell_type"], normalize="index")
    ancestry = truth_ind.loc[props.index, "ancestry"].to_numpy()
    assert len(set(np.bincount(ancestry))) > 1  # unequal population sizes
    accuracy = _loo_nearest_centroid_accuracy(props.to_numpy(), ancestry)
    assert accuracy >= 0.8, accuracy


def test_genotypes_separate_ancestries(cohort):
    G, values = _read_genotypes(cohort["bfile"])
    ancestry = (
        pd.read_csv(cohort["truth_individuals"], sep="\t").set_index("individual")
        .loc[list(G.iid.values), "ancestry"].to_numpy()
    )
    pcs = genotype_pcs(values, 2)
    assert _loo_nearest_centroid_accuracy(pcs, ancestry) == 1.0


def test_low_quality_cells_present(cohort):
    adata = ad.read_h5ad(cohort["counts"])
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    mt = np.asarray(adata[:, list(MT_GENES)].X.sum(axis=1)).ravel() / totals
    healthy = ~adata.obs["low_quality"].to_numpy()
    assert 0.01 < np.median(mt[healthy]) < 0.08
    assert np.median(totals[healthy]) > 1500
    assert ((mt > 0.2) | (totals < 500))[~healthy].mean() > 0.9


#: SHA-256 of the dense float32 counts of this tiny cohort as the generator wrote it before the
#: noise knobs existed (commit 8400906): the defaults must keep every demo result unchanged.
_TINY_KNOBS = dict(n_individuals=12, n_ancestries=2, mean_cells=30, n_snps=200, seed=5)
_TINY_COUNTS_SHA256 = "e629e9c19d56a0f8691763e4d922264362564e40da72f487692518db56618401"


def test_default_noise_reproduces_the_counts_of_before():
    import hashlib

    counts = draw_demo_cohort(CohortSpec(**_TINY_KNOBS))["counts"]
    dense = np.ascontiguousarray(counts.toarray().astype(np.float32))
    assert dense.shape == (328, 773)
    assert hashlib.sha256(dense.tobytes()).hexdigest() == _TINY_COUNTS_SHA256


def test_library_spread_and_dispersion_knobs():
    """library_sdlog sets the spread of log UMIs per cell; a smaller gene_dispersion adds noise."""
    narrow, wide, noisy = (
        draw_demo_cohort(CohortSpec(**_TINY_KNOBS, **kw))
        for kw in ({"library_sdlog": 0.1}, {"library_sdlog": 0.8}, {"gene_dispersion": 1.0})
    )
    spread = []
    for cohort in (narrow, wide):
        healthy = ~cohort["low_quality"]
        umis = np.asarray(cohort["counts"].sum(axis=1)).ravel()[healthy]
        spread.append(np.log(umis).std())
        assert np.log(cohort["library"][healthy]).std() == pytest.approx(spread[-1], abs=0.05)
    assert spread[0] == pytest.approx(0.1, abs=0.05) and spread[1] == pytest.approx(0.8, abs=0.1)
    # Same rates, gamma shape 1 instead of 10: the counts' variance over their mean grows (pooled
    # over genes and cells, whose differing means dilute the change; unchanged if ignored).
    default = draw_demo_cohort(CohortSpec(**_TINY_KNOBS))
    ratio = [
        (c["counts"].power(2).mean() - c["counts"].mean() ** 2) / c["counts"].mean()
        for c in (default, noisy)
    ]
    assert ratio[1] > 1.5 * ratio[0]


@pytest.mark.parametrize(
    "kwargs",
    [dict(n_individuals=3, n_ancestries=3), dict(fst=0.0), dict(mean_cells=0), dict(n_snps=0),
     dict(library_sdlog=-0.1), dict(gene_dispersion=0.0)],
)
def test_bad_parameters(tmp_path, kwargs):
    with pytest.raises(NAMInputError):
        make_demo_cohort(tmp_path, CohortSpec(**kwargs))
