"""cell_types/atoms.tsv: atoms as sub-states of their cell types."""

import pandas as pd
import pytest

from nam_core.errors import NAMInputError
from nam_core.results.cell_types import atom_substates


def _tables():
    groups = pd.DataFrame({"atom": ["C1", "C2", "C3", "C10"], "group": ["T1", "T2", "T1", "T10"],
                           "n_cells": [60, 50, 40, 5], "joined_with": ["C3", "", "C1", "C1"],
                           "statistic": ["dip_pvalue"] * 3 + ["too_few_cells"],
                           "value": [0.4, 0.0, 0.4, 2.5]})
    names = pd.DataFrame({"cluster": ["C1", "C2", "C3", "C10"],
                          "cell_type": ["CD4 T", "B", "CD8 T", "NK"]})
    type_names = pd.DataFrame({"group": ["T1", "T2", "T10"], "cell_type": ["CD4 T", "B", "NK"]})
    markers = pd.DataFrame({"cluster": ["C1"] * 4 + ["C2"],
                            "rank": [2, 1, 3, 4, 1], "gene": ["IL7R", "CD3E", "LTB", "X", "MS4A1"]})
    return groups, names, type_names, markers


def test_one_row_per_atom_with_type_share_and_markers():
    table = atom_substates(*_tables())
    assert list(table["atom"]) == ["C1", "C3", "C2", "C10"]  # T1 by size, then T2, then T10
    row = table.set_index("atom").loc["C1"]
    assert row["share_of_type"] == pytest.approx(60 / 100)
    assert row["top_markers"] == "CD3E,IL7R,LTB"
    assert table.set_index("atom").loc["C3", "atom_name"] == "CD8 T"
    assert table.set_index("atom").loc["C3", "cell_type"] == "CD4 T"
    assert table.set_index("atom").loc["C3", "top_markers"] == ""
    assert table.groupby("group")["share_of_type"].sum().round(6).eq(1.0).all()


def test_unnamed_type_is_an_error():
    groups, names, type_names, markers = _tables()
    with pytest.raises(NAMInputError, match="T10"):
        atom_substates(groups, names, type_names.iloc[:2], markers)
