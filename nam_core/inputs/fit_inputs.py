"""NAM's inputs in one file: the fit-inputs ``.npz`` of the workflow, written and read here only.

The file holds five arrays (:data:`FIT_INPUT_ARRAYS`):

* ``x`` (J, q) float64: genotype PCs of the kept individuals (docs/model.md, x_j);
* ``y`` (N, p) float32: expression PCs of the cells (y_ji);
* ``group`` (N,) int64: index 0..J-1 of each cell's individual;
* ``individuals`` (J,) str: their IIDs, in ``.fam`` order;
* ``cells`` (N,) str: the cell barcodes, in the order of the preprocessed ``.h5ad``.

Every step that reads it goes through :func:`read_fit_inputs`, which checks that the arrays line
up and names the file when they do not.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import pandas as pd

from ..errors import NAMInputError
from ..io import atomic_path, check_finite
from .cohort import normalise_ids

__all__ = [
    "FIT_INPUT_ARRAYS",
    "FitInputs",
    "kept_individuals",
    "assemble_fit_inputs",
    "write_fit_inputs",
    "read_fit_inputs",
]

logger = logging.getLogger(__name__)

FIT_INPUT_ARRAYS = ("x", "y", "group", "individuals", "cells")


@dataclasses.dataclass(frozen=True)
class FitInputs:
    """The arrays of the fit-inputs file; shapes in the module docstring."""

    x: np.ndarray
    y: np.ndarray
    group: np.ndarray
    individuals: np.ndarray
    cells: np.ndarray

    def check(self, source: str) -> FitInputs:
        """Raise :class:`NAMInputError` naming ``source`` unless the arrays line up."""
        n_ind, n_cells = len(self.individuals), len(self.cells)
        problems = []
        if self.x.ndim != 2 or self.x.shape[0] != n_ind:
            problems.append(f"x has shape {self.x.shape} for {n_ind} individuals")
        if self.y.ndim != 2 or self.y.shape[0] != n_cells:
            problems.append(f"y has shape {self.y.shape} for {n_cells} cells")
        if self.group.shape != (n_cells,):
            problems.append(f"group has shape {self.group.shape} for {n_cells} cells")
        elif n_cells and (self.group.min() < 0 or self.group.max() >= n_ind):
            problems.append(f"group holds indices outside 0..{n_ind - 1}")
        if problems:
            raise NAMInputError(f"{source}: {'; '.join(problems)}; rerun assemble_fit_inputs")
        return self


def kept_individuals(matching: pd.DataFrame) -> pd.Series:
    """IIDs the matching step kept that have genotypes, in ``.fam`` order.

    Parameters
    ----------
    matching : DataFrame
        ``matching/individuals.tsv`` (columns individual, in_genotypes, n_cells, status, action).

    Returns
    -------
    Series of str, indexed by the table's rows.
    """
    kept = matching["in_genotypes"].astype(bool) & (matching["action"] == "kept")
    return matching.loc[kept, "individual"].astype(str)


def assemble_fit_inputs(
    pcs: pd.DataFrame,
    cell_individuals,
    y: np.ndarray,
    cells,
    matching: pd.DataFrame,
    without_cells: str = "drop",
    source: str = "the preprocessed cells",
) -> FitInputs:
    """Line up genotype PCs and expression PCs on the individuals kept by the matching step.

    Parameters
    ----------
    pcs : DataFrame (J_all, q)
        Genotype PCs indexed by IID (``genotypes/pcs.tsv``).
    cell_individuals : sequence (N,)
        Individual of each cell, as in the ``.h5ad``'s individual column.
    y : array (N, p)
        Expression PCs of the cells (``obsm["X_pca"]``).
    cells : sequence of str (N,)
        Cell barcodes.
    matching : DataFrame
        The matching table (:func:`kept_individuals`).
    without_cells : {"drop", "keep"}
        Individuals left without cells by the expression QC: kept (clustered by genotype alone)
        or dropped; named in the log either way.
    source : str
        The cells' file, named in errors.

    Returns
    -------
    FitInputs
    """
    kept = kept_individuals(matching)
    cell_ids = normalise_ids(cell_individuals, "cell individuals", source)
    with_cells = kept.isin(cell_ids)
    lost = kept[~with_cells & (matching.loc[kept.index, "status"] == "matched")]
    if len(lost):
        action = "kept (genotype only)" if without_cells == "keep" else "dropped"
        logger.warning("QC removed every cell of %d individuals, %s: %s", len(lost), action,
                       ", ".join(lost))
    individuals = kept[with_cells | (without_cells == "keep")].to_numpy(dtype=str)
    group = pd.Index(individuals).get_indexer(cell_ids)
    if (group < 0).any():
        stray = sorted(set(cell_ids[group < 0]))
        raise NAMInputError(
            f"{source}: cells of {len(stray)} individuals the matching step did not keep "
            f"(e.g. {stray[:5]}); rerun match_individuals and preprocess_expression"
        )
    missing = pd.Index(individuals).difference(pcs.index.astype(str))
    if len(missing):
        raise NAMInputError(f"{len(missing)} individuals have no genotype PCs: {list(missing[:5])}")
    return FitInputs(
        x=pcs.set_axis(pcs.index.astype(str)).loc[individuals].to_numpy(dtype=np.float64),
        y=np.asarray(y, dtype=np.float32),
        group=group.astype(np.int64),
        individuals=individuals,
        cells=np.asarray(cells, dtype=str),
    ).check(source)


def write_fit_inputs(path: str | os.PathLike, inputs: FitInputs) -> None:
    """Write ``inputs`` to ``path`` (.npz, atomically; no pickled objects; finite values)."""
    check_finite({"x": inputs.x, "y": inputs.y}, path)
    with atomic_path(path) as tmp:
        np.savez(tmp, **dataclasses.asdict(inputs))
    logger.info(
        "NAM inputs: %d individuals x %d genotype PCs, %d cells x %d expression PCs",
        *inputs.x.shape, *inputs.y.shape,
    )


def read_fit_inputs(path: str | os.PathLike) -> FitInputs:
    """Read and check a file written by :func:`write_fit_inputs`."""
    with np.load(path, allow_pickle=False) as data:
        missing = [name for name in FIT_INPUT_ARRAYS if name not in data.files]
        if missing:
            raise NAMInputError(f"{path}: no array {', '.join(missing)}; not a NAM fit-inputs "
                                "file (rerun assemble_fit_inputs)")
        arrays = {name: data[name] for name in FIT_INPUT_ARRAYS}
    return FitInputs(**arrays).check(str(path))
