"""No NaN or infinity reaches a result file unless its column says what NaN means there."""

import logging

import numpy as np
import pandas as pd
import pytest

from nam_core.errors import NonFiniteOutputError
from nam_core.inputs.fit_inputs import FitInputs, write_fit_inputs
from nam_core.io import ANY_COLUMN, check_finite, write_tsv


def table():
    return pd.DataFrame({"cluster": ["C1", "C2", "C3"], "n": [1, 2, 3],
                         "p_value": [0.1, np.nan, 0.3], "share": [0.2, 0.3, 0.5]})


def test_nan_is_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "out.tsv"
    with pytest.raises(NonFiniteOutputError, match=r"out.tsv was not written: .*p_value: 1 NaN "
                                                   r"\(rows C2\)"):
        write_tsv(table(), path)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file


def test_nan_where_it_has_a_meaning_is_written_and_logged(tmp_path, caplog):
    path = tmp_path / "out.tsv"
    with caplog.at_level(logging.INFO):
        write_tsv(table(), path, missing={"p_value": "an untestable type"})
    assert "p_value: 1 missing values (NaN): an untestable type" in caplog.text
    assert pd.read_csv(path, sep="\t")["p_value"].isna().sum() == 1


@pytest.mark.parametrize("missing", [None, {"share": "x"}, {ANY_COLUMN: "anything"}])
def test_infinity_is_never_allowed(tmp_path, missing):
    df = table().assign(p_value=0.5)
    df.loc[2, "share"] = -np.inf
    with pytest.raises(NonFiniteOutputError, match=r"share: 1 \+-inf \(rows C3\)"):
        write_tsv(df, tmp_path / "out.tsv", missing=missing)


def test_an_index_names_the_rows(tmp_path):
    df = pd.DataFrame({"PC1": [1.0, np.nan]}, index=pd.Index(["IND1", "IND2"], name="individual"))
    with pytest.raises(NonFiniteOutputError, match=r"PC1: 1 NaN \(rows IND2\)"):
        write_tsv(df, tmp_path / "pcs.tsv", index=True)


def test_arrays_name_the_array():
    with pytest.raises(NonFiniteOutputError, match=r"fit.npz was not written: .*state__m: 2 NaN "
                                                   r"\(rows 1\)"):
        check_finite({"state__m": np.array([[0.0, 1.0], [np.nan, np.nan]]),
                      "labels": np.array([0, 1])}, "fit.npz")


def test_fit_inputs_with_nan_are_not_written(tmp_path):
    y = np.ones((4, 2), dtype=np.float32)
    y[3, 0] = np.nan
    inputs = FitInputs(np.eye(2), y, np.array([0, 0, 1, 1]), np.array(["a", "b"]),
                       np.array(["c1", "c2", "c3", "c4"]))
    with pytest.raises(NonFiniteOutputError, match=r"inputs.npz was not written: .*y: 1 NaN"):
        write_fit_inputs(tmp_path / "inputs.npz", inputs)
    assert not (tmp_path / "inputs.npz").exists()
