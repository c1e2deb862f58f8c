"""Donor covariates (age, sex, pool, ...): read, typed and checked before any long computation.

Two sources, both optional:

* a TSV with one row per donor, keyed by the individual ID (``inputs.donor_covariates``, the
  key column ``covariates.id_column``), and the type of each column used
  (``covariates.columns``: name -> ``numeric`` or ``categorical``);
* columns of the cells' ``.h5ad`` obs (``covariates.obs_columns``, e.g. the sequencing
  ``pool``), summarised per donor: a categorical column by its most frequent value among the
  donor's cells (ties: the first in sorted order), a numeric one by its mean over the donor's
  cells.

Missing values. An empty cell, ``NA`` or ``NaN`` of a used column, and a donor of the cohort
absent from the TSV, are missing. ``covariates.missing`` says what happens: ``error`` (the
default) stops with the file, column and donors named; ``drop`` leaves those donors out of
every covariate-adjusted test and names them in the log. Values are never imputed.

Other checks, each an error naming the file and the column or donor: an unknown type, a
column absent from the file, a duplicated donor ID, a numeric column holding text, and a
column with a single value over the donors kept (constant: it cannot be adjusted for, and a
categorical one would make the design singular).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import NAMInputError

__all__ = ["COVARIATE_TYPES", "MISSING_POLICIES", "check_covariate_spec", "read_donor_covariates",
           "obs_covariates", "read_obs_columns", "donor_covariates", "covariate_design", "covariate_types"]

logger = logging.getLogger(__name__)

COVARIATE_TYPES = ("numeric", "categorical")
MISSING_POLICIES = ("error", "drop")
_N_SHOWN = 5
_NA_STRINGS = ["", "NA", "NaN", "nan", "N/A", "NULL", "null", "."]


def _shown(names) -> str:
    names = [str(n) for n in names]
    text = ", ".join(repr(n) for n in names[:_N_SHOWN])
    return text + (f" and {len(names) - _N_SHOWN} more" if len(names) > _N_SHOWN else "")


def check_covariate_spec(columns: dict | None, source: str, missing: str = "error") -> dict:
    """``{name: type}`` with every type known and the missing policy valid, else an error."""
    columns = dict(columns or {})
    for name, kind in columns.items():
        if kind not in COVARIATE_TYPES:
            raise NAMInputError(
                f"{source}: covariate column {name!r} has unknown type {kind!r}; use one of "
                f"{', '.join(COVARIATE_TYPES)}")
    if missing not in MISSING_POLICIES:
        raise NAMInputError(f"covariates.missing must be one of {MISSING_POLICIES}, got {missing!r}")
    return columns


def _typed(values: pd.Series, kind: str, column: str, source: str) -> pd.Series:
    """A column as float64 (numeric) or str with NaN for missing (categorical)."""
    if kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & numbers.isna()
        if bad.any():
            raise NAMInputError(
                f"{source}: numeric covariate column {column!r} holds non-numbers "
                f"{_shown(values[bad].astype(str).unique())} (donors {_shown(values.index[bad])});"
                " declare it categorical in covariates.columns or fix the values")
        numbers = numbers.astype(np.float64)
        if np.isinf(numbers).any():
            raise NAMInputError(f"{source}: numeric covariate column {column!r} holds infinite "
                                f"values (donors {_shown(values.index[np.isinf(numbers)])})")
        return numbers
    return values.astype(object).where(values.notna(), np.nan).map(
        lambda v: v if isinstance(v, float) and np.isnan(v) else str(v).strip())


def read_donor_covariates(path, id_column: str, columns: dict) -> pd.DataFrame:
    """The used columns of a donor covariate TSV, typed, indexed by individual ID (str).

    Parameters
    ----------
    path : path of a tab-separated file with a header
    id_column : str
        Column holding the individual IDs (matched to the .fam IIDs, spaces stripped).
    columns : dict
        ``{column: "numeric" | "categorical"}``; the other columns are ignored.

    Returns
    -------
    DataFrame (donors in the file, len(columns)); numeric columns float64 (NaN: missing),
    categorical ones str (NaN: missing).
    """
    source = str(path)
    columns = check_covariate_spec(columns, source)
    if not Path(path).is_file():
        raise NAMInputError(f"donor covariate file {source!r} does not exist "
                            "(inputs.donor_covariates)")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False,
                            na_values=_NA_STRINGS)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise NAMInputError(f"{source}: not a readable tab-separated table ({err})") from err
    wanted = [id_column, *columns]
    absent = [c for c in wanted if c not in table.columns]
    if absent:
        raise NAMInputError(f"{source}: no column {_shown(absent)} (covariates.id_column / "
                            f"covariates.columns); the file has {_shown(table.columns)}")
    ids = table[id_column]
    if ids.isna().any():
        rows = np.flatnonzero(ids.isna().to_numpy()) + 2
        raise NAMInputError(f"{source}: column {id_column!r} has empty individual IDs "
                            f"(lines {_shown(rows)})")
    ids = ids.astype(str).str.strip()
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise NAMInputError(f"{source}: individuals listed more than once in column "
                            f"{id_column!r}: {_shown(duplicated)}")
    table = table.set_index(pd.Index(ids, name="individual"))
    return pd.DataFrame({c: _typed(table[c], kind, c, source) for c, kind in columns.items()},
                        index=table.index)


def read_obs_columns(path, columns) -> pd.DataFrame:
    """Named columns of an .h5ad's obs (nothing else of the file is read).

    Raises NAMInputError naming the file when it cannot be opened, and the absent columns with
    those present.
    """
    import h5py
    from anndata.io import read_elem

    try:
        with h5py.File(path, "r") as f:
            present = list(f["obs"].keys()) if "obs" in f else []
            absent = [c for c in columns if c not in present]
            if absent:
                raise NAMInputError(f"{path}: obs has no column {_shown(absent)} "
                                    f"(covariates.obs_columns); obs has {_shown(present)}")
            return pd.DataFrame({c: np.asarray(read_elem(f["obs"][c])) for c in columns})
    except OSError as err:
        raise NAMInputError(f"{path}: not a readable .h5ad ({err})") from err


def obs_covariates(obs: pd.DataFrame, individual_column: str, columns: dict,
                   source: str) -> pd.DataFrame:
    """Per-donor values of cell-level obs columns: the majority (categorical) or mean (numeric).

    Parameters
    ----------
    obs : DataFrame (N cells,) with ``individual_column`` and the named columns
    columns : dict ``{obs column: type}``
    source : str, the .h5ad named in errors

    Returns
    -------
    DataFrame (donors with cells, len(columns)) indexed by individual ID (str).
    """
    columns = check_covariate_spec(columns, source)
    absent = [c for c in columns if c not in obs.columns]
    if absent:
        raise NAMInputError(f"{source}: obs has no column {_shown(absent)} "
                            f"(covariates.obs_columns); obs has {_shown(obs.columns)}")
    donors = obs[individual_column].astype(str).str.strip().to_numpy()
    out = {}
    for column, kind in columns.items():
        values = _typed(obs[column].reset_index(drop=True), kind, column, source)
        frame = pd.DataFrame({"individual": donors, "value": values.to_numpy()})
        if kind == "numeric":
            out[column] = frame.groupby("individual")["value"].mean()
        else:
            out[column] = frame.dropna().groupby("individual")["value"].agg(
                lambda v: v.value_counts().sort_index().idxmax())
            mixed = frame.dropna().groupby("individual")["value"].nunique()
            if (mixed > 1).any():
                logger.info("%s: obs column %r takes more than one value within %d donors; each "
                            "donor gets its most frequent value", source, column,
                            int((mixed > 1).sum()))
    table = pd.DataFrame(out)
    table.index = table.index.astype(str).rename("individual")
    return table


def _handle_missing(table: pd.DataFrame, source: str, missing: str) -> pd.DataFrame:
    """Donors with a missing value: an error naming the column and donors, or dropped."""
    for column in table.columns:
        lacking = table.index[table[column].isna()]
        if len(lacking) and missing == "error":
            raise NAMInputError(
                f"{source}: covariate column {column!r} is missing for {len(lacking)} donors "
                f"({_shown(lacking)}); fill them in, or set covariates.missing: drop to leave "
                "these donors out of the adjusted tests")
        if len(lacking):
            logger.warning("%s: covariate %r missing for %d donors (%s), left out of the "
                           "adjusted tests", source, column, len(lacking), _shown(lacking))
    return table.dropna()


def _check_not_constant(table: pd.DataFrame, sources: dict) -> None:
    for column in table.columns:
        if table[column].nunique() < 2:
            value = table[column].iloc[0] if len(table) else "nothing"
            raise NAMInputError(
                f"{sources[column]}: covariate column {column!r} takes the single value "
                f"{value!r} over the {len(table)} donors analysed; a constant cannot be "
                "adjusted for: remove it from the covariates")


def donor_covariates(donors, tsv: pd.DataFrame | None = None, tsv_source: str = "",
                     obs_table: pd.DataFrame | None = None, obs_source: str = "",
                     missing: str = "error") -> pd.DataFrame:
    """The covariates of the cohort's donors, checked: one row per donor kept.

    Parameters
    ----------
    donors : sequence of str (J,)
        The cohort's individuals (genotyped, with cells), in order.
    tsv, obs_table : DataFrames from :func:`read_donor_covariates` and :func:`obs_covariates`
        (None: that source is unused); a column may come from one source only.
    missing : {"error", "drop"}

    Returns
    -------
    DataFrame with column individual then the covariates; the donors kept in ``donors`` order.
    """
    check_covariate_spec({}, tsv_source, missing)
    donors = pd.Index(np.asarray(donors, dtype=str), name="individual")
    parts, sources = [], {}
    for frame, source in ((tsv, tsv_source), (obs_table, obs_source)):
        if frame is None:
            continue
        clash = [c for c in frame.columns if c in sources]
        if clash:
            raise NAMInputError(f"covariate {_shown(clash)} named both in {sources[clash[0]]} "
                                f"and in {source}; name each covariate once")
        absent = donors.difference(frame.index)
        if len(absent) and missing == "error":
            raise NAMInputError(
                f"{source}: {len(absent)} donors of the cohort are missing ({_shown(absent)}); "
                "add them, or set covariates.missing: drop to leave them out of the adjusted "
                "tests")
        sources.update({c: source for c in frame.columns})
        parts.append(frame.reindex(donors))
    table = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=donors)
    for source in dict.fromkeys(sources.values()):
        _handle_missing(table[[c for c, s in sources.items() if s == source]], source, missing)
    table = table.dropna()
    if len(table) < len(donors):
        logger.warning("adjusted tests use %d of the %d donors (missing covariates)",
                       len(table), len(donors))
    _check_not_constant(table, sources)
    return table.reset_index()


def covariate_types(table: pd.DataFrame) -> dict:
    """``{column: type}`` of a checked covariate table (float columns numeric, others categorical)."""
    return {c: ("numeric" if pd.api.types.is_float_dtype(table[c])
                or pd.api.types.is_integer_dtype(table[c]) else "categorical")
            for c in table.columns if c != "individual"}


def covariate_design(table: pd.DataFrame, types: dict | None = None) -> tuple[np.ndarray, list]:
    """Columns of a linear model for the covariates: numeric centred, categorical as dummies.

    Parameters
    ----------
    table : DataFrame (n, ...) with the covariate columns (``individual`` ignored)
    types : dict or None
        ``{column: type}``; None infers it (:func:`covariate_types`).

    Returns
    -------
    design : ndarray (n, p) float64, no intercept (the caller adds it); a categorical column of
        m levels gives m - 1 indicator columns (the first level in sorted order is the
        reference), named ``<column>[<level>]``.
    names : list of str (p,)
    """
    types = covariate_types(table) if types is None else types
    columns, names = [], []
    for column, kind in types.items():
        values = table[column]
        if kind == "numeric":
            x = values.to_numpy(dtype=np.float64)
            columns.append(x - x.mean())
            names.append(column)
            continue
        levels = sorted(values.astype(str).unique())
        for level in levels[1:]:
            columns.append((values.astype(str) == level).to_numpy(dtype=np.float64))
            names.append(f"{column}[{level}]")
    design = np.column_stack(columns) if columns else np.empty((len(table), 0))
    return design, names
