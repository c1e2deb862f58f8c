import logging

import numpy as np
import pandas as pd
import pytest

from nam_core.errors import NAMInputError
from nam_core.inputs.cohort import MatchResult, match_individuals

SOURCES = dict(genotype_source="data/geno.fam", cells_source="data/counts.h5ad")
# genotypes: A..D; cells: B, A, E (no genotype); D has no cells
GENO = ["A", "B", "C", "D"]
CELLS = ["B", "A", "A", "E", "B", "C", "E", "A"]


def _report(result):
    return result.report.set_index("individual")


def test_default_policies_keep_individuals_drop_cells():
    res = match_individuals(GENO, CELLS, **SOURCES)
    assert isinstance(res, MatchResult)
    assert res.individuals == ["A", "B", "C", "D"]
    assert res.cell_mask.tolist() == [True, True, True, False, True, True, False, True]
    assert res.group.tolist() == [1, 0, 0, 1, 2, 0]
    assert res.group.dtype == np.int64
    # the codes point back to each kept cell's individual
    kept = np.asarray(CELLS)[res.cell_mask]
    assert [res.individuals[g] for g in res.group] == kept.tolist()

    report = _report(res)
    assert list(res.report.columns) == ["individual", "in_genotypes", "n_cells", "status", "action"]
    assert res.report["individual"].tolist() == ["A", "B", "C", "D", "E"]
    assert report.loc["A"].to_dict() == dict(
        in_genotypes=True, n_cells=3, status="matched", action="kept"
    )
    assert report.loc["D"].to_dict() == dict(
        in_genotypes=True, n_cells=0, status="no_cells", action="kept"
    )
    assert report.loc["E"].to_dict() == dict(
        in_genotypes=False, n_cells=2, status="no_genotype", action="dropped"
    )


def test_drop_individuals_without_cells():
    res = match_individuals(GENO, CELLS, individuals_without_cells="drop", **SOURCES)
    assert res.individuals == ["A", "B", "C"]
    assert res.group.max() == 2
    assert _report(res).loc["D", "action"] == "dropped"


def test_group_follows_genotype_order():
    res = match_individuals(["C", "B", "A"], ["A", "B", "C", "A"], **SOURCES)
    assert res.individuals == ["C", "B", "A"]
    assert res.group.tolist() == [2, 1, 0, 2]


def test_fail_on_individuals_without_cells():
    geno = GENO + [f"X{i}" for i in range(15)]
    with pytest.raises(NAMInputError) as err:
        match_individuals(geno, CELLS, individuals_without_cells="fail", **SOURCES)
    message = str(err.value)
    assert "16 individuals" in message and "'D'" in message and "'X0'" in message
    assert "and 6 more" in message
    assert "data/geno.fam" in message and "data/counts.h5ad" in message


def test_fail_on_cells_without_genotype():
    with pytest.raises(NAMInputError) as err:
        match_individuals(GENO, CELLS, cells_without_genotype="fail", **SOURCES)
    message = str(err.value)
    assert "2 cells" in message and "1 individuals" in message and "'E'" in message
    assert "data/geno.fam" in message


def test_all_matched_fail_policies_pass():
    res = match_individuals(
        ["A", "B"], ["B", "A"], individuals_without_cells="fail",
        cells_without_genotype="fail", **SOURCES,
    )
    assert res.cell_mask.all() and set(res.report["status"]) == {"matched"}


def test_no_overlap_names_both_files_and_examples():
    with pytest.raises(NAMInputError) as err:
        match_individuals(["IND0001", "IND0002"], ["donor_1", "donor_2", "donor_1"], **SOURCES)
    message = str(err.value)
    assert "data/geno.fam" in message and "data/counts.h5ad" in message
    assert "'IND0001'" in message and "'donor_1'" in message


def test_ids_compared_as_strings():
    res = match_individuals(["1", "2", "3"], pd.Series([1, 3, 3, 2]), **SOURCES)
    assert res.group.tolist() == [0, 2, 2, 1]


def test_categorical_cells_with_unused_categories():
    cells = pd.Categorical(["A", "A"], categories=["A", "B", "Z"])
    res = match_individuals(["A", "B"], cells, **SOURCES)
    assert res.individuals == ["A", "B"]
    assert "Z" not in set(res.report["individual"])  # unused categories are not individuals


def test_duplicated_genotype_ids():
    with pytest.raises(NAMInputError, match="more than once.*'A'"):
        match_individuals(["A", "B", "A"], ["A"], **SOURCES)


def test_missing_cell_individuals():
    with pytest.raises(NAMInputError, match="counts.h5ad.*1 missing"):
        match_individuals(["A"], ["A", None], **SOURCES)


@pytest.mark.parametrize(
    "kwargs",
    [dict(individuals_without_cells="ignore"), dict(cells_without_genotype="keep")],
)
def test_unknown_policy(kwargs):
    with pytest.raises(NAMInputError, match="must be one of"):
        match_individuals(GENO, CELLS, **SOURCES, **kwargs)


def test_logs_dropped_by_name(caplog):
    with caplog.at_level(logging.INFO, logger="nam_core.inputs.cohort"):
        match_individuals(GENO, CELLS, individuals_without_cells="drop", **SOURCES)
    assert "dropped 2 cells of 1 individuals without genotypes: E (2 cells)" in caplog.text
    assert "have no cells, dropped: D" in caplog.text


def test_loss_above_threshold_fails_below_warns(caplog):
    # cells of E (2 of 8 cells, 1 of 4 individuals with cells) have no genotypes: 25%
    with pytest.raises(NAMInputError, match=r"1 of the 4 individuals .* \(25\.0%\).*2 of 8 cells"):
        match_individuals(GENO, CELLS, max_lost_fraction=0.2, **SOURCES)
    with caplog.at_level(logging.WARNING, logger="nam_core.inputs.cohort"):
        res = match_individuals(GENO, CELLS, max_lost_fraction=0.25, **SOURCES)
    assert "have no usable genotypes" in caplog.text and res.cell_mask.sum() == 6


def test_uncalled_individuals_are_dropped_with_their_cells():
    res = match_individuals(GENO, CELLS, uncalled=["A"], **SOURCES)
    report = _report(res)
    assert report.loc["A"].to_dict() == dict(
        in_genotypes=True, n_cells=3, status="no_calls", action="dropped")
    assert "A" not in res.individuals and res.cell_mask.sum() == 3  # B, B, C
    with pytest.raises(NAMInputError, match=r"3 cells .* 'A'"):
        match_individuals(GENO, ["A", "A", "A", "B"], uncalled=["A"],
                          cells_without_genotype="fail", **SOURCES)
