"""Parts of an .h5ad read without loading its matrix, and results written beside it or into a copy.

Rows and columns of the counts are read a block of cells at a time through
:func:`~nam_core.inputs.counts_file.open_counts`; the cell table, gene table, ``obsm`` and ``uns``
are read with h5py and anndata's element readers. Memory is O(cells + genes + one block).

The workflow's intermediate results are annotation files (:func:`write_annotations`: obs, var,
obsm and uns, no X, so O(cells + genes) on disk); the one file users get with the matrix is
written once, at the end, by :func:`annotate_matrix`.
"""

from __future__ import annotations

import h5py
import numpy as np
import scipy.sparse as sp

from .counts_file import ROW_CHUNK, open_counts

__all__ = ["read_annotations", "read_rows", "read_columns", "annotate_h5ad", "write_annotations",
           "annotate_matrix"]


def read_annotations(path):
    """An .h5ad's obs, var, obsm and uns, without X or any layer: memory O(cells + genes).

    anndata's ``backed="r"`` keeps only X on disk and loads every layer (a counts layer is as
    large as X: 8.9 GB at 1.2M cells), so the workflow reads its cells this way and takes rows
    or columns of X with :func:`read_rows` / :func:`read_columns`.

    Returns
    -------
    AnnData (N, G) with X None.
    """
    import anndata as ad
    from anndata.io import read_elem

    with h5py.File(path, "r") as f:
        parts = {key: read_elem(f[key]) for key in ("obs", "var", "obsm", "uns") if key in f}
    return ad.AnnData(**parts)


def read_columns(path, columns: np.ndarray, chunk: int = ROW_CHUNK) -> sp.csr_matrix:
    """Columns of an .h5ad's X for every cell, read a block of ``chunk`` rows at a time.

    Parameters
    ----------
    path : str or Path
    columns : ndarray (g,) of int
        Gene positions.

    Returns
    -------
    csr_matrix (N, g) float32.
    """
    columns = np.asarray(columns, dtype=np.int64)
    with open_counts(path) as cells:
        blocks = [block[:, columns] for _, block in cells.iter_rows(chunk=chunk)]
    return sp.vstack(blocks, format="csr")


def read_rows(path, rows: np.ndarray, chunk: int = ROW_CHUNK) -> sp.csr_matrix:
    """Rows of an .h5ad's X, read a block of ``chunk`` rows at a time.

    anndata's backed ``X[rows]`` reads every row between the first and the last one asked for
    at once (the whole matrix for a random sample). For CSR, this reads the stored values near
    the rows asked for (:meth:`~nam_core.inputs.counts_file.CountsFile.selected_rows`); for
    other layouts, a block of ``chunk`` rows at a time, keeping the rows asked for.

    Parameters
    ----------
    path : str or Path
    rows : ndarray (n,) of int
        Sorted, distinct row numbers.

    Returns
    -------
    csr_matrix (n, G) float32, rows in the order given.
    """
    rows = np.asarray(rows)
    if rows.size > 1 and np.any(np.diff(rows) <= 0):
        raise ValueError("rows must be sorted and distinct")
    with open_counts(path) as cells:
        if rows.size and (selected := cells.selected_rows(rows)) is not None:
            return selected
        keep = np.zeros(cells.shape[0], dtype=bool)
        keep[rows] = True
        blocks = [block for _, block in cells.iter_rows(cells=keep, chunk=chunk)]
        n_genes = cells.shape[1]
    if not blocks:
        return sp.csr_matrix((0, n_genes), dtype=np.float32)
    return sp.vstack(blocks, format="csr")


def annotate_h5ad(path_in, path_out, obs_columns: dict, obsm: dict, uns: dict,
                  check_obs=None) -> None:
    """Copy an .h5ad adding obs columns, obsm arrays and uns entries, without loading X.

    The file is copied byte for byte, then only ``obs`` (rewritten with the new columns),
    ``obsm[key]`` and ``uns[key]`` are written, so memory is O(cells) whatever the size of X.

    Parameters
    ----------
    path_in, path_out : str or Path
        Source .h5ad and the copy to write (e.g. a temporary path of :func:`atomic_path`).
    obs_columns : dict of str to array-like (N,)
    obsm : dict of str to ndarray (N, d)
    uns : dict of str to anything anndata can write
    check_obs : callable or None
        Called with the source's obs (DataFrame) before the copy; it raises to stop.
    """
    import shutil

    from anndata.io import read_elem, write_elem

    with h5py.File(path_in, "r") as f:
        obs = read_elem(f["obs"])
    if check_obs is not None:
        check_obs(obs)
    shutil.copyfile(path_in, path_out)
    for name, values in obs_columns.items():
        obs[name] = values
    with h5py.File(path_out, "r+") as f:
        del f["obs"]
        write_elem(f, "obs", obs)
        for group, entries in (("obsm", obsm), ("uns", uns)):
            for key, value in entries.items():
                if key in f[group]:
                    del f[f"{group}/{key}"]
                write_elem(f[group], key, value)


def write_annotations(path_in, path_out, obs_columns: dict, obsm: dict, uns: dict) -> None:
    """Write an .h5ad's annotations with new obs columns, obsm arrays and uns entries, no X.

    obs, var, obsm and uns are read and written; memory and disk are O(cells + genes) whatever
    the size of the matrix.

    Parameters
    ----------
    path_in : str or Path
        Source .h5ad (its X is not read).
    path_out : str or Path
        The annotation file to write (e.g. a temporary path of :func:`atomic_path`).
    obs_columns : dict of str to array-like (N,)
    obsm : dict of str to ndarray (N, d)
    uns : dict of str to anything anndata can write
    """
    annotations = read_annotations(path_in)
    for name, values in obs_columns.items():
        annotations.obs[name] = values
    for key, value in obsm.items():
        annotations.obsm[key] = value
    annotations.uns.update(uns)
    annotations.write_h5ad(path_out)


def annotate_matrix(path_matrix, annotations, path_out, obs_columns: dict | None = None,
                    source: str = "the annotations"):
    """Copy the .h5ad that holds the matrix with an annotation file's obs, obsm and uns.

    The annotations are those of a file of :func:`write_annotations`, read once by the caller
    (:func:`read_annotations`); ``obs_columns`` adds further columns. X is not loaded.

    Parameters
    ----------
    path_matrix : str or Path
        .h5ad with X (and its layers), copied byte for byte.
    annotations : AnnData (N, G)
        obs, obsm and uns of the same cells in the same order (X None).
    path_out : str or Path
        The copy to write (e.g. a temporary path of :func:`atomic_path`).
    obs_columns : dict of str to array-like (N,), optional
        Columns added after the annotations'.
    source : str
        The annotations' file, named in the error.

    Raises
    ------
    NAMInputError
        When the two list different cells.
    """
    from ..errors import NAMInputError

    def same_cells(obs):
        if not obs.index.equals(annotations.obs_names):
            raise NAMInputError(f"{source} and {path_matrix} list different cells; "
                                "rerun the rule that wrote the first")

    columns = {name: annotations.obs[name].values for name in annotations.obs.columns}
    annotate_h5ad(path_matrix, path_out, {**columns, **(obs_columns or {})},
                  dict(annotations.obsm), dict(annotations.uns), check_obs=same_cells)
