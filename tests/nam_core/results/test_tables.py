"""The fit-inputs file and the individuals table, on tiny hand-made inputs."""

import numpy as np
import pandas as pd
import pytest

from nam_core.errors import NAMInputError
from nam_core.inputs.fit_inputs import (
    FitInputs,
    assemble_fit_inputs,
    read_fit_inputs,
    write_fit_inputs,
)
from nam_core.results.tables import individual_table

MATCHING = pd.DataFrame({
    "individual": ["a", "b", "c", "d"],
    "in_genotypes": [True, True, True, False],
    "n_cells": [2, 1, 0, 1],
    "status": ["matched", "matched", "no_cells", "no_genotype"],
    "action": ["kept", "kept", "kept", "dropped"],
})
PCS = pd.DataFrame({"PC1": [1.0, 2.0, 3.0], "PC2": [0.5, 0.0, -0.5]},
                   index=pd.Index(["a", "b", "c"], name="individual"))


def assemble(**kwargs):
    cells = dict(cell_individuals=[" a", "b", "a "], y=np.arange(6.0).reshape(3, 2),
                 cells=["c1", "c2", "c3"])
    return assemble_fit_inputs(PCS, matching=MATCHING, **(cells | kwargs))


@pytest.mark.parametrize(("policy", "individuals"), [("drop", ["a", "b"]),
                                                     ("keep", ["a", "b", "c"])])
def test_assemble_lines_up_ids_with_spaces(policy, individuals):
    inputs = assemble(without_cells=policy)
    assert list(inputs.individuals) == individuals
    assert inputs.group.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(inputs.x, PCS.loc[individuals].to_numpy())
    assert inputs.y.dtype == np.float32 and inputs.x.dtype == np.float64


def test_cells_of_an_individual_not_kept_are_named():
    with pytest.raises(NAMInputError, match=r"cells.h5ad: cells of 1 individuals.*'d'"):
        assemble(cell_individuals=["a", "b", "d"], source="cells.h5ad")


def test_round_trip_and_checks(tmp_path):
    inputs = assemble()
    write_fit_inputs(tmp_path / "inputs.npz", inputs)
    back = read_fit_inputs(tmp_path / "inputs.npz")
    for name in ("x", "y", "group", "individuals", "cells"):
        np.testing.assert_array_equal(getattr(back, name), getattr(inputs, name))
    np.savez(tmp_path / "short.npz", x=inputs.x, y=inputs.y)
    with pytest.raises(NAMInputError, match=r"short.npz: no array group, individuals, cells"):
        read_fit_inputs(tmp_path / "short.npz")
    bad = FitInputs(inputs.x, inputs.y, np.array([0, 5, 0]), inputs.individuals, inputs.cells)
    write_fit_inputs(tmp_path / "bad.npz", bad)
    with pytest.raises(NAMInputError, match=r"bad.npz: group holds indices outside 0..1"):
        read_fit_inputs(tmp_path / "bad.npz")


def test_individual_table_lists_occupied_clusters_only():
    proba = np.array([[0.9, 0.0, 0.05, 0.05],
                      [0.1, 0.0, 0.8, 0.1],
                      [0.7, 0.1, 0.2, 0.0]])
    table = individual_table(["a", "b", "c"], proba.argmax(1), proba, PCS, [2, 1, 0])
    assert list(table.columns) == ["individual", "cluster", "probability", "n_cells",
                                   "prob_I1", "prob_I3", "prob_other", "PC1", "PC2"]
    np.testing.assert_allclose(table["prob_other"], [0.05, 0.1, 0.1])
    np.testing.assert_allclose(table.filter(like="prob_").sum(axis=1), 1.0)
    assert table["cluster"].tolist() == ["I1", "I3", "I1"]
