"""Bad donor covariates fail in check_donor_covariates, naming the file and the column or donor,
and leave no output behind; good ones give one typed row per donor."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from nam_core.errors import NAMInputError
from nam_core.inputs.covariates import covariate_design, donor_covariates

from .conftest import load_script

check_script = load_script("check_donor_covariates")

SETTINGS = {"id_column": "iid", "columns": {"age": "numeric", "sex": "categorical"},
            "obs_columns": {}, "missing": "error"}


@pytest.fixture
def donors(cohort):
    fam = pd.read_csv(f"{cohort['bfile']}.fam", sep=r"\s+", header=None, dtype=str)
    return fam[1].tolist()


@pytest.fixture
def tsv(donors, tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"iid": donors, "age": rng.integers(20, 80, len(donors)).astype(str),
                          "sex": np.resize(["F", "M"], len(donors)), "other": "x"})
    path = tmp_path / "covariates.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path


def run(cohort, path, tmp_path, **changes):
    out = tmp_path / "out" / "donors.tsv"
    table = check_script.check(cohort["bfile"], cohort["counts"], path, out, "individual",
                               SETTINGS | changes)
    return table, out


def assert_fails(cohort, path, tmp_path, pattern, **changes):
    with pytest.raises(NAMInputError, match=pattern):
        run(cohort, path, tmp_path, **changes)
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), "partial output left behind"


def rewrite(path, edit):
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    edit(table)
    table.to_csv(path, sep="\t", index=False)


def test_good_covariates(cohort, tsv, tmp_path, donors):
    table, out = run(cohort, tsv, tmp_path)
    written = pd.read_csv(out, sep="\t")
    assert list(written.columns) == ["individual", "age", "sex"]
    assert written["individual"].astype(str).tolist() == donors
    assert table["age"].dtype == np.float64


def test_missing_donor(cohort, tsv, tmp_path, donors):
    rewrite(tsv, lambda t: t.drop(index=3, inplace=True))
    assert_fails(cohort, tsv, tmp_path, rf"covariates\.tsv.*missing.*{donors[3]}")


def test_missing_donor_dropped_by_policy(cohort, tsv, tmp_path, donors):
    rewrite(tsv, lambda t: t.drop(index=3, inplace=True))
    table, _ = run(cohort, tsv, tmp_path, missing="drop")
    assert donors[3] not in set(table["individual"]) and len(table) == len(donors) - 1


def test_nan_value(cohort, tsv, tmp_path, donors):
    rewrite(tsv, lambda t: t.loc.__setitem__((5, "age"), "NA"))
    assert_fails(cohort, tsv, tmp_path, rf"covariates\.tsv.*'age'.*missing.*{donors[5]}")
    table, _ = run(cohort, tsv, tmp_path, missing="drop")
    assert donors[5] not in set(table["individual"])


def test_unknown_type(cohort, tsv, tmp_path):
    assert_fails(cohort, tsv, tmp_path, r"'sex'.*unknown type 'ordinal'",
                 columns={"age": "numeric", "sex": "ordinal"})


def test_text_in_numeric_column(cohort, tsv, tmp_path):
    rewrite(tsv, lambda t: t.loc.__setitem__((2, "age"), "forty"))
    assert_fails(cohort, tsv, tmp_path, r"covariates\.tsv.*numeric.*'age'.*'forty'")


def test_constant_column(cohort, tsv, tmp_path):
    rewrite(tsv, lambda t: t.__setitem__("sex", "F"))
    assert_fails(cohort, tsv, tmp_path, r"covariates\.tsv.*'sex'.*single value 'F'")


def test_absent_column(cohort, tsv, tmp_path):
    assert_fails(cohort, tsv, tmp_path, r"covariates\.tsv.*no column 'bmi'",
                 columns={"bmi": "numeric"})


def test_duplicated_donor(cohort, tsv, tmp_path, donors):
    rewrite(tsv, lambda t: t.loc.__setitem__((1, "iid"), donors[0]))
    assert_fails(cohort, tsv, tmp_path, rf"more than once.*{donors[0]}")


def test_absent_file(cohort, tmp_path):
    assert_fails(cohort, tmp_path / "nope.tsv", tmp_path, r"nope\.tsv.*does not exist")


def test_pool_from_obs(cohort, tmp_path, tsv):
    counts = tmp_path / "counts.h5ad"
    adata = ad.read_h5ad(cohort["counts"])
    donors = adata.obs["individual"].astype(str)
    code = {d: f"P{i % 3}" for i, d in enumerate(sorted(donors.unique()))}
    pool = donors.map(code).to_numpy().copy()
    pool[0] = "P9"  # one stray cell: the majority wins
    adata.obs["pool"] = pd.Categorical(pool)
    adata.write_h5ad(counts)
    local = dict(cohort, counts=counts)
    table, _ = run(local, tsv, tmp_path, obs_columns={"pool": "categorical"})
    assert table.set_index("individual")["pool"].to_dict() == code
    (tmp_path / "out" / "donors.tsv").unlink()
    assert_fails(local, tsv, tmp_path, r"counts\.h5ad.*obs has no column 'batch'",
                 obs_columns={"batch": "categorical"})


def test_no_covariates_gives_the_donors(cohort, tmp_path, donors):
    table, _ = run(cohort, None, tmp_path, columns={})
    assert table.columns.tolist() == ["individual"] and len(table) == len(donors)


def test_design_dummies_and_centring():
    table = pd.DataFrame({"individual": list("abcd"), "age": [1.0, 2.0, 3.0, 6.0],
                          "site": ["x", "y", "z", "y"]})
    design, names = covariate_design(table)
    assert names == ["age", "site[y]", "site[z]"]
    np.testing.assert_allclose(design[:, 0], [-2, -1, 0, 3])
    np.testing.assert_array_equal(design[:, 1:], [[0, 0], [1, 0], [0, 1], [1, 0]])


def test_same_covariate_from_two_sources():
    frame = pd.DataFrame({"pool": ["a", "b"]}, index=pd.Index(["d1", "d2"], name="individual"))
    with pytest.raises(NAMInputError, match="named both"):
        donor_covariates(["d1", "d2"], frame, "c.tsv", frame, "x.h5ad")
