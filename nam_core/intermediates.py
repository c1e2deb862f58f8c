"""Checks that a file written by the workflow is still whole, and errors that say how to rebuild it.

A file can be damaged after it was written whole (a full disk during a copy, a failing file
system, a user's edit): :func:`intact_problem` detects the usual damage, truncation, cheaply;
:func:`read_intermediate` turns a reader's failure into an error that names the file, the rule
that made it and how to rebuild it; :func:`mark_damaged_outputs` makes a Snakemake run rebuild
every damaged output and everything made from it.

This module imports only the standard library at import time (h5py lazily), so the workflow can
import it at parse time without importing torch.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

__all__ = ["intact_problem", "find_damaged_outputs", "mark_damaged_outputs",
           "corrupt_file_message", "read_intermediate"]

T = TypeVar("T")

_TAILS = {".png": b"IEND\xaeB`\x82", ".pdf": b"%%EOF"}
"""Bytes every complete file of the type ends with (a PDF may add a newline after %%EOF)."""

logger = logging.getLogger(__name__)


def intact_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with a file the workflow wrote, by a cheap structural check; None if whole.

    Reads a few bytes, or the directory of the file, never the data: a .npz must open as a zip
    (its central directory is at the end, so truncation removes it), an .h5ad or .h5 must open
    with h5py (HDF5 records the file's length and refuses a shorter file), a .tsv must end with
    a newline, a .png and a .pdf with their end markers. Other files only must not be empty.

    Parameters
    ----------
    path : str or path
        An existing file.

    Returns
    -------
    str or None
        A short description ("is empty", "is not a complete zip archive: ...") or None.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return "is empty"
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with zipfile.ZipFile(path):
                return None
        except (zipfile.BadZipFile, OSError) as err:
            return f"is not a complete .npz (zip) archive: {err}"
    if suffix in (".h5ad", ".h5"):
        import h5py

        try:
            with h5py.File(path, "r"):
                return None
        except OSError as err:
            return f"is not a complete HDF5 file: {err}"
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 1024))
        tail = handle.read()
    if suffix == ".tsv" and not tail.endswith(b"\n"):
        return "does not end with a newline (truncated)"
    if suffix in _TAILS and _TAILS[suffix] not in tail[-32:]:
        return f"lacks the end marker of a {suffix} file (truncated)"
    return None


def find_damaged_outputs(
    outputs: Iterable[tuple[str, str, bool]], folder: str
) -> list[tuple[str, str, bool, str]]:
    """Existing outputs under ``folder`` that fail :func:`intact_problem`.

    Parameters
    ----------
    outputs : iterable of (pattern, rule, has_inputs)
        Every output of a workflow: its path pattern (wildcards in braces), the rule that writes
        it, and whether that rule has inputs.
    folder : str
        Only patterns that start with it are checked (e.g. ``results/<cohort>/``).

    Returns
    -------
    list of (path, rule, has_inputs, problem)
    """
    damaged = []
    for pattern, rule, has_inputs in outputs:
        if not pattern.startswith(folder):
            continue
        for path in glob.glob(re.sub(r"\{[^}]+\}", "*", pattern)):
            if os.path.isfile(path) and (problem := intact_problem(path)):
                damaged.append((path, rule, has_inputs, problem))
    return damaged


def mark_damaged_outputs(outputs: Iterable[tuple[str, str, bool]], folder: str) -> list[str]:
    """Make the next Snakemake run rebuild every damaged output and everything made from it.

    Snakemake decides what to rerun from modification times (and params, code, the set of
    inputs), never from content, and it rebuilds a missing intermediate only when a job that
    reads it must run anyway: deleting a damaged intermediate would leave the stale results
    downstream in place ("Nothing to be done"). Setting the damaged file's modification time
    to 1970 makes it older than the inputs of the rule that wrote it, so that rule reruns, and
    then every rule downstream (their input is new). An output of a rule without inputs (the
    demo cohort) is deleted instead; it is rebuilt when a job needs it. The workflow calls this
    while it is parsed, before the DAG is built, also in a dry run (the plan then shows the
    rebuild).

    Parameters
    ----------
    outputs, folder
        As for :func:`find_damaged_outputs`.

    Returns
    -------
    list of str
        One line per damaged file: the file, what is wrong with it and what was done.
    """
    messages = []
    for path, rule, has_inputs, problem in find_damaged_outputs(outputs, folder):
        if has_inputs:
            os.utime(path, (0, 0))
            action = f"marked it out of date: rule {rule} rebuilds it"
        else:
            os.remove(path)
            action = f"removed it: rule {rule} rebuilds it when it is needed"
        messages.append(f"{path} {problem}; {action}, and every output made from it is rebuilt")
    return messages


def corrupt_file_message(path: str | os.PathLike, problem: str, made_by: str | None) -> str:
    """The message for a damaged intermediate: the file, what is wrong, the rule, the fix."""
    if made_by:
        fix = (
            f" It was made by rule {made_by}: rebuild it and everything made from it with "
            f"`snakemake --forcerun {made_by} ...` (deleting it alone reruns nothing when the "
            "outputs made from it exist)"
        )
    else:
        fix = " Replace it with a complete copy"
    return f"{os.fspath(path)} {problem}.{fix}"


def read_intermediate(
    path: str | os.PathLike, read: Callable[..., T], made_by: str | None = None, **kwargs
) -> T:
    """``read(path, **kwargs)``, with a damaged file reported as NAMInputError.

    Parameters
    ----------
    path : str or path
        A file written by an earlier rule of the workflow.
    read : callable
        The reader (``anndata.read_h5ad``, ``numpy.load``, a TSV reader, ``NAM.load``).
    made_by : str, optional
        The rule that wrote ``path``, named in the message.
    **kwargs
        Passed to ``read``.

    Returns
    -------
    What ``read`` returns.

    Raises
    ------
    NAMInputError
        If :func:`intact_problem` finds a problem, or ``read`` fails with the errors of a
        damaged file (``BadZipFile``, ``OSError`` including h5py's, ``EOFError``, a zlib or
        parser error); the message names the file, the problem, ``made_by`` and the fix.
    """
    import zlib

    from .errors import NAMInputError

    if not Path(path).is_file():
        raise NAMInputError(corrupt_file_message(path, "does not exist", made_by))
    problem = intact_problem(path)
    if problem is None:
        try:
            return read(path, **kwargs)
        except NAMInputError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, KeyError, ValueError) as err:
            problem = f"cannot be read ({type(err).__name__}: {err})"
    raise NAMInputError(corrupt_file_message(path, problem, made_by))
