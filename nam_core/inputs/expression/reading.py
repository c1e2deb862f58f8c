"""Reading and validating an .h5ad of raw UMI counts, in row blocks or whole."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import NAMInputError, examples
from ..counts_file import CountsFile, hdf5_damage_named, open_counts

__all__ = ["check_individual_column", "read_cell_table", "read_counts", "unique_index",
           "validated_cell_table"]

logger = logging.getLogger(__name__)


def check_individual_column(obs: pd.DataFrame, individual_key: str, source: str) -> None:
    """Raise unless ``obs`` has the column ``individual_key`` with a value for every cell."""
    if individual_key not in obs.columns:
        raise NAMInputError(
            f"{source}: obs has no column {individual_key!r} naming each cell's individual; "
            f"available obs columns: {examples(obs.columns, limit=50) or 'none'}"
        )
    missing = obs[individual_key].isna().to_numpy()
    if missing.any():
        raise NAMInputError(
            f"{source}: obs column {individual_key!r} is missing for {int(missing.sum())} cells, "
            f"e.g. {examples(obs.index[missing])}"
        )


def unique_index(index: pd.Index, what: str, source: str) -> pd.Index:
    """``index`` with duplicated names made unique (with a warning naming ``what``)."""
    if index.is_unique:
        return index
    duplicated = index[index.duplicated()].unique()
    logger.warning(
        "%s: %d duplicated %s names (e.g. %s), made unique by appending -1, -2, ... (as "
        "anndata's make_index_unique); the outputs use the new names", source,
        len(duplicated), what, ", ".join(map(str, duplicated[:3])),
    )
    return pd.Index(ad.utils.make_index_unique(index.astype(str)))


def validated_cell_table(counts: CountsFile, individual_key: str) -> pd.DataFrame:
    """The validated cell table: individual column present and complete, as categorical str."""
    check_individual_column(counts.obs, individual_key, counts.source)
    obs = counts.obs.copy()
    obs.index = unique_index(obs.index, "cell", counts.source)
    obs[individual_key] = obs[individual_key].astype(str).astype("category")
    return obs


def read_cell_table(path, individual_key: str, counts_layer: str | None = None) -> pd.DataFrame:
    """Validate an .h5ad of raw counts in row blocks and return its cell table.

    The counts are read one block of cells at a time (never whole), so this costs O(block)
    memory at any cohort size.

    Parameters
    ----------
    path : str or Path
        An .h5ad whose counts matrix (cells x genes) holds raw UMI counts.
    individual_key : str
        ``obs`` column naming each cell's individual.
    counts_layer : str or None
        Where the counts are: None for ``X``, ``"raw.X"`` for ``.raw.X``, else a layer name.

    Returns
    -------
    DataFrame (N cells)
        ``obs`` with ``individual_key`` as categorical strings, cell names made unique.

    Raises
    ------
    NAMInputError
        File missing or unreadable; no counts where ``counts_layer`` says; no cells or genes;
        no ``individual_key`` column (the message lists the available ones) or missing values
        in it; NaN, infinite, negative or non-integer counts (the message counts them and
        names example cells and genes, and where else counts may be).
    """
    with hdf5_damage_named(path), open_counts(path, counts_layer) as counts:
        obs = validated_cell_table(counts, individual_key)
        totals = counts.validate_values()
        logger.info(
            "read %s: %d cells, %d genes, %d individuals", counts.source, *counts.shape,
            obs[individual_key].nunique(),
        )
        logger.info(
            "median UMIs per cell: %.0f (before QC); set expression.target_sum near it",
            float(np.median(totals)),
        )
    return obs


def read_counts(path, individual_key: str, counts_layer: str | None = None) -> ad.AnnData:
    """Read and validate raw UMI counts into memory (small cohorts; see :func:`preprocess_h5ad`).

    Parameters and errors as :func:`read_cell_table`.

    Returns
    -------
    AnnData (N cells, G genes)
        Counts in ``X`` (float32 CSR), ``obs[individual_key]`` as categorical strings;
        duplicated cell or gene names are made unique (with a warning).
    """
    with hdf5_damage_named(path), open_counts(path, counts_layer) as counts:
        obs = validated_cell_table(counts, individual_key)
        counts.validate_values()
        X = sp.vstack([block for _, block in counts.iter_rows()], format="csr")
        var = counts.var.copy()
        var.index = unique_index(var.index, "gene", counts.source)
        logger.info(
            "read %s: %d cells, %d genes, %d individuals", counts.source, *counts.shape,
            obs[individual_key].nunique(),
        )
    return ad.AnnData(X=X, obs=obs, var=var)

