"""The raw UMI counts of an .h5ad, opened and checked: cell table, gene names, validation, row blocks.

An .h5ad is an HDF5 file; its counts matrix (``X``, ``raw/X`` or ``layers/<name>``) is read a
block of cells at a time with h5py through :func:`anndata.io.sparse_dataset`, so memory is
O(chunk) whatever the cohort's size. CSR, CSC and dense matrices are accepted, with any index
dtypes anndata accepts (e.g. int64 ``indptr`` with int32 ``indices``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import N_EXAMPLES, NAMInputError, examples
from .read_ahead import read_ahead

__all__ = ["CountsFile", "open_counts", "hdf5_damage_named", "COUNTS_LAYER_RAW", "ROW_CHUNK"]

logger = logging.getLogger(__name__)

#: ``counts_layer`` value naming the counts in ``.raw.X`` (the CELLxGENE layout).
COUNTS_LAYER_RAW = "raw.X"
#: Cells read per block; at ~800 non-zeros per cell a block is ~40 MB in float32 + int64.
ROW_CHUNK = 4096
#: Stored values read at once for sampled rows: 4M values are 48 MB in float32 + int64.
SPAN_VALUES = 4 * 1024**2


def _element_paths(counts_layer: str | None) -> tuple[str, str]:
    """HDF5 paths of the counts matrix and of the table naming its genes."""
    if counts_layer in (None, "", "X"):
        return "X", "var"
    if counts_layer in (COUNTS_LAYER_RAW, "raw"):
        return "raw/X", "raw/var"
    return f"layers/{counts_layer}", "var"


def _alternatives(f: h5py.File) -> list[str]:
    """Other places in the file that may hold counts, as ``counts_layer`` values."""
    found = [COUNTS_LAYER_RAW] if "raw/X" in f else []
    if "layers" in f:
        found += list(f["layers"].keys())
    return found


def _read_frame(f: h5py.File, key: str, source: str) -> pd.DataFrame:
    from anndata.io import read_elem

    try:
        return read_elem(f[key])
    except Exception as err:  # anndata raises many types for malformed groups
        raise NAMInputError(f"{source}: {key} could not be read: {type(err).__name__}: {err}") from err


@dataclasses.dataclass
class CountsFile:
    """An open .h5ad: its cell table, gene names and counts matrix, read a block at a time.

    Attributes
    ----------
    path : Path
    source : str
        ``counts file '<path>'`` (and the counts element when it is not ``X``), for messages.
    element : str
        HDF5 path of the counts matrix (``X``, ``raw/X`` or ``layers/<name>``).
    obs : DataFrame (N cells)
        The cell table (``obs``), indexed by cell name.
    var : DataFrame (G genes)
        The gene table of the counts matrix (``raw/var`` for ``raw/X``).
    """

    path: Path
    source: str
    element: str
    obs: pd.DataFrame
    var: pd.DataFrame
    _file: h5py.File = dataclasses.field(repr=False)

    @property
    def var_names(self) -> pd.Index:
        """Gene names (G,)."""
        return self.var.index

    @property
    def shape(self) -> tuple[int, int]:
        """(cells, genes) of the counts matrix."""
        return len(self.obs), len(self.var)

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> CountsFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _matrix(self):
        from anndata.io import sparse_dataset

        node = self._file[self.element]
        return sparse_dataset(node) if isinstance(node, h5py.Group) else node

    def iter_rows(
        self, cells: np.ndarray | None = None, chunk: int = ROW_CHUNK
    ) -> Iterator[tuple[np.ndarray, sp.csr_matrix]]:
        """Blocks of rows as float32 CSR, in file order, read by a thread a block or two ahead.

        Parameters
        ----------
        cells : ndarray (N,) of bool, optional
            Rows to yield (all when None); unselected rows are read but dropped per block.
        chunk : int
            Rows read per block.

        Yields
        ------
        rows : ndarray (n,) of int
            File row numbers of the block's cells.
        block : csr_matrix (n, G) float32
        """
        return read_ahead(self._row_blocks(cells, chunk))

    def _row_blocks(self, cells, chunk) -> Iterator[tuple[np.ndarray, sp.csr_matrix]]:
        """The blocks of :meth:`iter_rows`, read in the calling thread."""
        csr = self._csr_node()  # checks the structure of CSR counts
        matrix = None
        if csr is None:
            matrix = self._matrix()
            self._check_sparse_structure()
        n = self.shape[0]
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            rows = np.arange(start, stop)
            if cells is not None:
                rows = rows[cells[start:stop]]
                if rows.size == 0:
                    continue
            block = self._block(start, stop, matrix) if csr is None \
                else self._csr_block(start, stop, *csr)
            if cells is not None and rows.size < stop - start:
                block = block[cells[start:stop]]
            yield rows, block

    def _csr_block(self, start: int, stop: int, node: h5py.Group, indptr: np.ndarray) -> sp.csr_matrix:
        """Rows ``start..stop-1`` of CSR counts from their stored ranges, float32, indices checked.

        Read with h5py directly: anndata's reader spent ~35 ms a block of 4,096 cells reading
        attributes and checking versions (5.3 s over 147 blocks in a profile).
        """
        return self._range_rows(np.arange(start, stop), indptr[start:stop], indptr[start + 1:stop + 1],
                                node["data"], node["indices"])

    def selected_rows(self, rows: np.ndarray, max_gap: int | None = None,
                      max_span: int = SPAN_VALUES) -> sp.csr_matrix | None:
        """Sorted ``rows`` of CSR counts as float32 CSR, reading only the stored values near them.

        Rows whose stored values lie less than ``max_gap`` values apart (default: one HDF5
        chunk, which a read decompresses whole anyway) are read in one range of at most
        ``max_span`` values; so a sample of 2 % of the cells reads about that share of the
        file, where whole blocks of rows would read all of it. None for other layouts.

        Parameters
        ----------
        rows : ndarray (n,) of int, sorted and distinct
        """
        csr = self._csr_node()
        if csr is None:
            return None
        node, indptr = csr
        data, indices = node["data"], node["indices"]
        max_gap = max_gap if max_gap is not None else (data.chunks or (65_536,))[0]
        starts, stops = indptr[rows], indptr[rows + 1]
        pieces = [self._range_rows(rows[run], starts[run], stops[run], data, indices)
                  for run in _runs(starts, stops, max_gap, max_span)]
        return sp.vstack(pieces, format="csr") if pieces else None

    def _range_rows(self, rows, starts, stops, data, indices) -> sp.csr_matrix:
        """Rows whose values lie in one stored range, read at once (column indices checked).

        Rows stored back to back (a block of consecutive rows) are taken as read; otherwise only
        the rows' own values are gathered from the range.
        """
        lo, hi = int(starts[0]), int(stops[-1])
        lengths = stops - starts
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        values, columns = data[lo:hi], indices[lo:hi]
        if indptr[-1] < hi - lo:  # gaps between the rows
            where = np.repeat(starts - lo - indptr[:-1], lengths) + np.arange(indptr[-1])
            values, columns = values[where], columns[where]
        block = sp.csr_matrix((values.astype(np.float32, copy=False), columns, indptr),
                              shape=(len(rows), self.shape[1]))
        self._check_block_indices(block, int(rows[0]))
        return block

    def _csr_node(self) -> tuple[h5py.Group, np.ndarray] | None:
        """The counts' HDF5 group and its checked indptr when they are CSR, else None."""
        node = self._file[self.element]
        if not (isinstance(node, h5py.Group) and node.attrs.get("encoding-type") == "csr_matrix"):
            return None
        return node, self._check_sparse_structure()

    def _check_sparse_structure(self) -> np.ndarray | None:
        """A sparse matrix's indptr must run from 0, never decrease and end at its nnz.

        Damaged pointers would make scipy read out of bounds (a crash, not an error). Reads
        indptr whole (N + 1 integers) and returns it; None for a dense matrix.
        """
        node = self._file[self.element]
        if not isinstance(node, h5py.Group):
            return None
        if not all(key in node for key in ("indptr", "indices", "data")):
            raise NAMInputError(f"{self.source}: the sparse counts {self.element} lack indptr, "
                                "indices or data; the file is damaged")
        indptr = node["indptr"][...]
        n_major = self.shape[0] if "csr" in str(node.attrs.get("encoding-type", "csr")) \
            else self.shape[1]
        nnz = node["indices"].shape[0]
        problem = None
        if indptr.shape != (n_major + 1,):
            problem = f"indptr holds {indptr.size} entries for {n_major} rows/columns (+1)"
        elif indptr[0] != 0 or indptr[-1] != nnz or node["data"].shape[0] != nnz:
            problem = (f"indptr runs from {indptr[0]} to {indptr[-1]}, but indices hold {nnz} "
                       f"and data {node['data'].shape[0]} entries")
        elif (np.diff(indptr) < 0).any():
            problem = f"indptr decreases at row {int(np.argmax(np.diff(indptr) < 0))}"
        if problem:
            raise NAMInputError(f"{self.source}: sparse counts {self.element} are damaged: "
                                f"{problem}; copy the file again from its source")
        return indptr

    def _check_block_indices(self, block, start: int) -> None:
        """A sparse block's minor indices (CSR columns, CSC rows) lie in range, none repeated.

        Else raises naming the block's rows.
        """
        indices = getattr(block, "indices", None)
        if indices is None or indices.size == 0:
            return
        kind, n_minor = ("column", block.shape[1]) if block.format == "csr" else ("row", block.shape[0])
        where = f"in rows {start}..{start + block.shape[0] - 1}; copy the file again from its source"
        if not block.has_canonical_format:  # unsorted is allowed; a repeated index is not
            summed = block.copy()
            summed.sum_duplicates()
            if summed.nnz != block.nnz:
                raise NAMInputError(f"{self.source}: sparse counts {self.element} are damaged: a "
                                    f"{kind} index repeated {where}")
        if indices.min() < 0 or indices.max() >= n_minor:
            raise NAMInputError(f"{self.source}: sparse counts {self.element} are damaged: a "
                                f"{kind} index outside 0..{n_minor - 1} {where}")

    def validate_values(self, chunk: int = ROW_CHUNK) -> np.ndarray:
        """Counts are finite, non-negative whole numbers; else raise naming cells and genes.

        One pass over the matrix in blocks of ``chunk`` rows: only a block's worth of values is
        held, never a second copy of the matrix.

        Returns
        -------
        ndarray (N,) of float64
            Total counts (UMIs) of each cell, in file order, from the same pass.

        Raises
        ------
        NAMInputError
            NaN or infinite, negative, or non-integer values: the message counts each kind and
            names example cells and genes; for negative or non-integer values (log-normalised
            or scaled data) it points to ``.raw.X`` or the layers that may hold the counts.
        """
        problems = {kind: _Problem() for kind in ("NaN", "infinite", "negative", "non-integer")}
        totals = np.zeros(self.shape[0], dtype=np.float64)
        for start, values, indptr in read_ahead(self._value_blocks(chunk)):
            totals[start:start + indptr.size - 1] = _row_sums(values, indptr)
            bad = _bad_values(values)
            if any(mask.any() for mask in bad.values()):
                stop = start + indptr.size - 1
                rows, block = np.arange(start, stop), self._block(start, stop)
                for kind, mask in bad.items():
                    if mask.any():
                        problems[kind].add(block, rows, mask)
        found = {kind: p for kind, p in problems.items() if p.n_values}
        if not found:
            return totals
        parts = [p.describe(kind, self.obs.index, self.var_names) for kind, p in found.items()]
        message = f"{self.source} does not hold raw UMI counts: " + "; ".join(parts)
        if set(found) - {"NaN", "infinite"}:
            message += self._hint()
        raise NAMInputError(message)

    def _value_blocks(self, chunk: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first row, stored values, row pointers from 0) of each block of ``chunk`` rows.

        For CSR counts only the values are read, not the column indices (a third of the bytes
        of float32 values with int64 indices); other layouts are read whole, as float32.
        """
        csr = self._csr_node()
        if csr is None:
            for rows, block in self.iter_rows(chunk=chunk):
                yield int(rows[0]), block.data, block.indptr
            return
        node, indptr = csr
        data = node["data"]
        for start in range(0, self.shape[0], chunk):
            ptr = indptr[start:min(start + chunk, self.shape[0]) + 1]
            yield start, data[ptr[0]:ptr[-1]], ptr - ptr[0]

    def _block(self, start: int, stop: int, matrix=None) -> sp.csr_matrix:
        """Rows ``start..stop-1`` of ``matrix`` (default: the counts), float32 CSR, indices checked."""
        block = (self._matrix() if matrix is None else matrix)[start:stop]
        self._check_block_indices(block, start)
        return sp.csr_matrix(block, dtype=np.float32)

    def _hint(self) -> str:
        others = [a for a in _alternatives(self._file) if _element_paths(a)[0] != self.element]
        text = " (log-normalised or scaled data?)"
        if others:
            text += (
                f"; this file also holds {examples(others, 20)}: name the one with raw counts "
                f"as counts_layer (config inputs.counts_layer), e.g. {others[0]!r}"
            )
        else:
            text += "; give the raw counts in X, .raw.X or a layer named by counts_layer"
        return text


def _runs(starts: np.ndarray, stops: np.ndarray, max_gap: int, max_span: int) -> list[slice]:
    """Slices of consecutive rows (stored ranges ``starts..stops``) to read as one range each.

    A run ends where the next row starts ``max_gap`` or more values after it, or where it would
    span more than ``max_span`` values.
    """
    runs, first = [], 0
    for i in range(1, starts.size):
        if starts[i] - stops[i - 1] >= max_gap or stops[i] - starts[first] > max_span:
            runs.append(slice(first, i))
            first = i
    return runs + [slice(first, starts.size)] if starts.size else []


def _row_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Per-row sums (n,) float64 of CSR ``values`` with row pointers ``indptr`` (n + 1,) from 0."""
    cumulative = np.zeros(values.size + 1, dtype=np.float64)
    np.cumsum(values, dtype=np.float64, out=cumulative[1:])
    return cumulative[indptr[1:]] - cumulative[indptr[:-1]]


def _bad_values(values: np.ndarray) -> dict[str, np.ndarray]:
    """Masks of the values that are not counts, by kind (same shape as ``values``)."""
    values = np.asarray(values, dtype=np.float32) if values.dtype.kind not in "fiu" else values
    bad = {"NaN": np.isnan(values), "infinite": np.isinf(values)}
    with np.errstate(invalid="ignore"):
        bad["negative"] = values < 0
        bad["non-integer"] = np.isfinite(values) & (values != np.round(values))
    return bad


@dataclasses.dataclass
class _Problem:
    """Running count and first examples of one kind of bad value."""

    n_values: int = 0
    cells: set = dataclasses.field(default_factory=set)
    shown: list = dataclasses.field(default_factory=list)

    def add(self, block: sp.csr_matrix, rows: np.ndarray, mask: np.ndarray) -> None:
        where = np.flatnonzero(mask)
        local = np.searchsorted(block.indptr, where, side="right") - 1
        self.n_values += where.size
        self.cells.update(rows[np.unique(local)].tolist())
        for k in range(min(N_EXAMPLES - len(self.shown), where.size)):
            self.shown.append((rows[local[k]], block.indices[where[k]], block.data[where[k]]))

    def describe(self, kind: str, cell_names: pd.Index, gene_names: pd.Index) -> str:
        shown = ", ".join(
            f"cell {cell_names[r]!r} gene {gene_names[g]!r} = {v:g}" for r, g, v in self.shown
        )
        return f"{self.n_values} {kind} values in {len(self.cells)} cells (e.g. {shown})"


@contextlib.contextmanager
def hdf5_damage_named(path) -> Iterator[None]:
    """Turn an HDF5 library error raised while reading ``path`` into a NAMInputError naming it.

    A damaged file can fail deep inside h5py (RuntimeError "bad heap free list", OSError
    "wrong B-tree signature", KeyError of a broken link); the user sees the file and the fix.
    """
    try:
        yield
    except NAMInputError:
        raise
    except (RuntimeError, OSError, KeyError, ValueError, TypeError, IndexError) as err:
        raise NAMInputError(
            f"counts file {str(path)!r} is damaged: {type(err).__name__}: {err}; copy it again "
            "from its source (or rewrite it with anndata)"
        ) from err


def open_counts(path, counts_layer: str | None = None) -> CountsFile:
    """Open an .h5ad for block reading: its cell table and the gene names of the counts.

    Parameters
    ----------
    path : str or Path
        The .h5ad.
    counts_layer : str or None
        Where the raw counts are: None or ``"X"`` for ``X``, ``"raw.X"`` for ``.raw.X``, any
        other name for ``layers[name]``.

    Returns
    -------
    CountsFile
        Open (close it, or use it as a context manager). Nothing of the matrix is read yet.

    Raises
    ------
    NAMInputError
        File missing or not an .h5ad; no counts at ``counts_layer`` (the message lists where
        else counts may be); no cells or genes; a matrix whose shape disagrees with obs/var.
    """
    path = Path(path)
    source = f"counts file {str(path)!r}"
    if not path.exists():
        raise NAMInputError(f"{source} does not exist")
    if not path.is_file():
        raise NAMInputError(f"{source} is not a file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise NAMInputError(f"{source} could not be read as .h5ad: {type(err).__name__}: {err}") from err
    try:
        return _open(f, path, source, counts_layer)
    except BaseException:
        f.close()
        raise


def _counts_in_x_fix(f: h5py.File, element: str) -> str:
    """The fix when counts_layer names a missing place but the file has X: read X instead."""
    if element == "X" or "X" not in f:
        return ""
    return (
        "; if the raw counts are in X, remove inputs.counts_layer from the config (or set it "
        "to 'X')"
    )


def _open(f: h5py.File, path: Path, source: str, counts_layer: str | None) -> CountsFile:
    element, var_key = _element_paths(counts_layer)
    if "obs" not in f or element not in f or var_key not in f:
        others = [a for a in _alternatives(f) if _element_paths(a)[0] != element]
        if element == "X":
            message = f"{source} could not be read as .h5ad: it has no X"
        else:
            message = f"{source} has no {element} (counts_layer={counts_layer!r})"
        raise NAMInputError(
            message + ("" if "obs" in f else " and no obs")
            + (f"; counts_layer could name {examples(others, 20)}" if others else "")
            + _counts_in_x_fix(f, element)
        )
    if element != "X":
        source = f"{source} ({element})"
    obs = _read_frame(f, "obs", source)
    var = _read_frame(f, var_key, source)
    node = f[element]
    shape = tuple(int(s) for s in (node.attrs["shape"] if isinstance(node, h5py.Group) else node.shape))
    if len(obs) == 0 or len(var) == 0 or 0 in shape:
        raise NAMInputError(f"{source} holds {shape[0]} cells and {shape[1]} genes")
    if shape != (len(obs), len(var)):
        raise NAMInputError(
            f"{source}: the counts matrix is {shape[0]} x {shape[1]} but obs lists {len(obs)} "
            f"cells and {var_key} {len(var)} genes"
        )
    obs.index = obs.index.astype(str)
    var.index = var.index.astype(str)
    return CountsFile(path=path, source=source, element=element, obs=obs, var=var, _file=f)
