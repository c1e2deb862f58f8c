"""A batch column named by expression.batch_key is checked in the first rule, naming file and column."""

import pytest

from nam_core.errors import NAMInputError
from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.demo import make_demo_cohort

from .conftest import load_script

match_script = load_script("match_individuals")


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    spec = CohortSpec(n_individuals=12, n_ancestries=2, mean_cells=30, n_snps=200, seed=5,
                      n_pools=3)
    return make_demo_cohort(tmp_path_factory.mktemp("pooled"), spec)


def test_absent_batch_column_fails_before_matching(pooled, tmp_path):
    table = tmp_path / "individuals.tsv"
    with pytest.raises(NAMInputError, match="no column 'batch'") as err:
        match_script.match(pooled["bfile"], pooled["counts"], table, "individual",
                           batch_key="batch")
    assert str(pooled["counts"]) in str(err.value)
    assert not table.exists()


def test_present_batch_column_passes(pooled, tmp_path):
    table = tmp_path / "individuals.tsv"
    match_script.match(pooled["bfile"], pooled["counts"], table, "individual", batch_key="pool")
    assert table.exists()
