"""Atomic file output, tables and config files.

Outputs are written to a temporary file beside the target, then renamed into place
(:func:`atomic_path`), so nothing half-written is left at the target path if the writer fails or
is interrupted; a test hook injects write failures (:func:`inject_write_fault`). Tables are
written only when every value is finite (:func:`write_tsv`, :func:`check_finite`). Whether a file
written earlier is still whole is :mod:`nam_core.intermediates`.

This module imports only the standard library at import time, so the workflow can import it at
parse time without importing torch.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = [
    "atomic_path", "atomic_write_text", "read_tsv", "write_tsv", "read_yaml_config",
    "remove_pending_temporaries", "inject_write_fault", "check_finite",
]

logger = logging.getLogger(__name__)

#: Columns read as text whatever they hold (IDs such as "007" stay IDs).
TEXT_COLUMNS = {"individual": str, "cell": str, "cluster": str, "gene": str, "cell_type": str}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    The temporary name keeps the target's suffix (or ``suffix``) so that writers which infer a
    format from the extension (matplotlib, anndata) behave as for the target. On error the
    temporary file is removed and the target is left untouched; an OSError (a full disk, a
    folder that cannot be written) is raised again as an OSError whose message names the
    target and the OS error. :func:`inject_write_fault` makes a write fail on demand.
    """
    target = Path(path)
    tmp_path = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=suffix or target.suffix
        )
        os.close(fd)
        tmp_path = Path(tmp)
        _PENDING.add(tmp_path)
        yield tmp_path
        _injected_fault(target, "write")
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        _injected_fault(target, "replace")
        os.replace(tmp_path, target)
    except OSError as err:
        _remove(tmp_path)
        raise _named_os_error(err, target) from err
    except BaseException:
        _remove(tmp_path)
        raise
    finally:
        if tmp_path is not None:
            _PENDING.discard(tmp_path)


def _remove(tmp_path: Path | None) -> None:
    if tmp_path is not None:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)


def _named_os_error(err: OSError, target: Path) -> OSError:
    """An OSError of the same errno whose message names ``target`` and what to do."""
    if str(target) in str(err) and "could not write" in str(err):
        return err
    reason = err.strerror or str(err)
    if err.errno == errno.ENOSPC:
        fix = "free space on that file system (or point results/ elsewhere) and rerun"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"make {target.parent} writable and rerun"
    else:
        fix = "fix the cause and rerun"
    new = OSError(err.errno, f"could not write {target}: {reason}; nothing was left under that "
                             f"name and the temporary file was removed; {fix}")
    new.filename = str(target)
    return new


_FAULTS: list[tuple[str, str, int]] = []
"""Injected write faults: (file-name glob, stage "write" or "replace", errno)."""

FAULT_ENV = "NAM_INJECT_WRITE_FAULT"
"""Environment variable of injected faults: ``stage:glob[:errno name]`` items separated by
commas, e.g. ``write:cells.h5ad:ENOSPC`` (for tests of a whole workflow run)."""


@contextlib.contextmanager
def inject_write_fault(pattern: str, stage: str = "write", error: int = errno.ENOSPC):
    """Make every atomic write to a file whose name matches ``pattern`` fail (a test hook).

    Parameters
    ----------
    pattern : str
        A glob matched against the target's file name (``"best.npz"``, ``"*.png"``).
    stage : {"write", "replace"}
        "write": the write fails after the writer has written to the temporary file, as when
        the disk fills during the last block; "replace": the rename into place fails.
    error : int
        The errno raised (default ENOSPC, "No space left on device").
    """
    if stage not in ("write", "replace"):
        raise ValueError(f"stage must be 'write' or 'replace', not {stage!r}")
    fault = (pattern, stage, error)
    _FAULTS.append(fault)
    try:
        yield
    finally:
        _FAULTS.remove(fault)


def _env_faults() -> list[tuple[str, str, int]]:
    faults = []
    for item in filter(None, os.environ.get(FAULT_ENV, "").split(",")):
        stage, pattern, *name = item.split(":")
        faults.append((pattern, stage, getattr(errno, name[0]) if name else errno.ENOSPC))
    return faults


def _injected_fault(target: Path, stage: str) -> None:
    """Raise the OSError of an injected fault matching ``target`` at ``stage``, if any."""
    import fnmatch

    for pattern, fault_stage, error in _FAULTS + _env_faults():
        if fault_stage == stage and fnmatch.fnmatch(target.name, pattern):
            raise OSError(error, f"{os.strerror(error)} (injected at {stage})")


_PENDING: set[Path] = set()
"""Temporary files of the atomic writes under way in this process."""


def remove_pending_temporaries() -> None:
    """Remove the temporary files of the atomic writes under way (a job ended from outside)."""
    for tmp_path in list(_PENDING):
        tmp_path.unlink(missing_ok=True)
        _PENDING.discard(tmp_path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_tsv(path: str | os.PathLike, **kwargs):
    """Read a workflow TSV as a DataFrame; ID-like columns (:data:`TEXT_COLUMNS`) stay text."""
    import pandas as pd

    return pd.read_csv(
        path, sep="\t", dtype=TEXT_COLUMNS, keep_default_na=False, na_values=[""],
        float_precision="round_trip", **kwargs,
    )


#: How write_tsv writes floats: 10 significant digits, no trailing zeros ("3" for a count held as
#: a float, "1" for 1.0000000000000002); 1e-10 relative is far below any quantity reported.
FLOAT_FORMAT = "%.10g"


ANY_COLUMN = "*"
"""Key of ``missing`` in :func:`check_finite` that lets every column hold NaN."""


def _non_finite(values, name: str, labels, missing: Mapping[str, str]) -> str | None:
    """What is wrong with the float values of one column or array (None if allowed)."""
    import numpy as np

    values = np.atleast_1d(np.asarray(values))
    if values.dtype.kind not in "fc" or values.size == 0:
        return None
    nan, inf = np.isnan(values), np.isinf(values)
    allowed = missing.get(name, missing.get(ANY_COLUMN))
    bad = inf | (nan & (allowed is None))
    if allowed is not None and nan.any():
        logger.info("%s: %d missing values (NaN): %s", name, int(nan.sum()), allowed)
    if not bad.any():
        return None
    rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
    shown = ", ".join(str(labels[r]) for r in rows[:5]) if labels is not None else \
        ", ".join(map(str, rows[:5]))
    kinds = " and ".join(k for k, m in (("NaN", nan & bad), ("+-inf", inf)) if m.any())
    return f"{name}: {int(bad.sum())} {kinds} (rows {shown}{', ...' if len(rows) > 5 else ''})"


def check_finite(data, path: str | os.PathLike, missing: Mapping[str, str] | None = None,
                 row_labels=None) -> None:
    """Raise unless every float value of ``data``, about to be written to ``path``, is finite.

    Called by the writers before they write (:func:`write_tsv`, the fit and fit-inputs
    ``.npz``, the ``.h5ad`` PCs and UMAP), so a NaN or infinity from a numerical failure
    stops the job instead of reaching a result file silently.

    Parameters
    ----------
    data : DataFrame or mapping of str to array
        A table (its numeric columns are checked) or named arrays (float arrays are checked).
    path : str or path
        The file it is written to, named in the error.
    missing : mapping of str to str, optional
        Columns (or arrays) where NaN is legitimate, each with what NaN means there (e.g.
        ``{"p_value": "a contrast with fewer than two individuals on a side is not tested"}``);
        the key :data:`ANY_COLUMN` allows NaN in every column. Infinities are never allowed.
        The count of NaN in an allowed column is logged with its meaning.
    row_labels : sequence, optional
        Names of the rows for the message (a table's first column or index by default).

    Raises
    ------
    NonFiniteOutputError
        Naming the file, each column at fault, how many values and the first rows.
    """
    from .errors import NonFiniteOutputError

    missing = dict(missing or {})
    problems = []
    if hasattr(data, "columns"):
        if row_labels is None:
            first = data.iloc[:, 0] if data.shape[1] and data.iloc[:, 0].dtype == object \
                else data.index
            row_labels = list(first)
        for name in data.columns:
            if data[name].dtype.kind in "fc":
                problems.append(_non_finite(data[name].to_numpy(), str(name), row_labels, missing))
    else:
        for name, values in data.items():
            problems.append(_non_finite(values, str(name), row_labels, missing))
    problems = [p for p in problems if p]
    if problems:
        raise NonFiniteOutputError(
            f"{os.fspath(path)} was not written: its values must be finite, but "
            f"{'; '.join(problems)}. A numerical failure upstream (a degenerate input or a "
            "diverged fit) produces these; the log of this job names the step"
        )


def write_tsv(df, path: str | os.PathLike, index: bool = False,
              missing: Mapping[str, str] | None = None) -> None:
    """Write ``df`` as a tab-separated table, atomically, after :func:`check_finite`.

    Floats are written as :data:`FLOAT_FORMAT`. ``missing``: the columns where NaN is legitimate, each with its meaning (written as an
    empty field); NaN elsewhere, and infinity anywhere, raise ``NonFiniteOutputError``.
    """
    check_finite(df.reset_index() if index else df, path, missing)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=index, float_format=FLOAT_FORMAT)
    logger.info("wrote %s: %d rows, %d columns", path, len(df), df.shape[1] + index)


def read_yaml_config(path: str | os.PathLike, default_of: str | None = None) -> dict:
    """The mapping in the YAML config file ``path``; a clear error naming the file otherwise.

    Parameters
    ----------
    path : str or path
        The config file.
    default_of : str, optional
        What reads ``path`` when no file is given (``"snakemake"``): a missing file then says
        to pass ``--configfile``.

    Raises
    ------
    NAMInputError
        The file is missing or unreadable, is not valid YAML (the line and column, and a hint
        when a tab is the cause), or does not hold a mapping.
    """
    import yaml

    from .errors import NAMInputError

    path = Path(path)
    if not path.is_file():
        hint = (f"; no --configfile was given to {default_of}, which reads {path} relative to "
                f"the working directory {Path.cwd()}: pass --configfile path/to/config.yaml"
                if default_of else "")
        raise NAMInputError(f"config file {path.resolve()} does not exist{hint}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise NAMInputError(f"config file {path} cannot be read: {err}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        tab = ("; YAML does not allow tabs for indentation: replace the tab with spaces"
               if "\t" in line or "\\t" in str(err) or "tab" in str(err).lower() else "")
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise NAMInputError(f"config file {path} is not valid YAML{where}: {problem}{tab}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NAMInputError(
            f"config file {path} must hold a mapping of sections (cohort:, demo:, ...), "
            f"not a {type(data).__name__}"
        )
    return data


def json_compatible(value, keep_non_finite: bool = False):
    """``value`` as JSON types, recursively.

    numpy scalars and arrays become Python numbers and lists, tuples lists, paths strings. NaN
    becomes None and +-inf the strings ``"inf"``/``"-inf"`` (standard JSON has neither), unless
    ``keep_non_finite``: then they stay floats, which Python's json writes and reads back as
    ``NaN`` and ``Infinity``.
    """
    import numpy as np

    if isinstance(value, dict):
        return {k: json_compatible(v, keep_non_finite) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [json_compatible(v, keep_non_finite) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not keep_non_finite:
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value
