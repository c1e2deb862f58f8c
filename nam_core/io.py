"""Atomic file output: write to a temporary file beside the target, then rename it into place.

Nothing half-written is left at the target path if the writer fails or is interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

__all__ = ["atomic_path", "atomic_write_text", "read_tsv", "write_tsv"]

logger = logging.getLogger(__name__)

#: Columns read as text whatever they hold (IDs such as "007" stay IDs).
TEXT_COLUMNS = {"individual": str, "cell": str, "cluster": str, "gene": str, "cell_type": str}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    The temporary name keeps the target's suffix (or ``suffix``) so that writers which infer a
    format from the extension (matplotlib, anndata) behave as for the target. On error the
    temporary file is removed and the target is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix or target.suffix
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_tsv(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    """Read a workflow TSV; the individual, cell, cluster, gene and cell-type columns stay text."""
    return pd.read_csv(
        path, sep="\t", dtype=TEXT_COLUMNS, keep_default_na=False, na_values=[""],
        float_precision="round_trip", **kwargs,
    )


def write_tsv(df: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> None:
    """Write ``df`` as a tab-separated table, atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=index)
    logger.info("wrote %s: %d rows, %d columns", path, len(df), df.shape[1] + index)
