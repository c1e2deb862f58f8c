"""Shared by the workflow's scripts: nam_core on the path, logging to the rule's log file.

Importing this module puts the repository root on ``sys.path``, so ``nam_core`` imports even in
an environment where the package is not installed (``snakemake --sdm conda`` builds
``envs/nam.yaml``, which holds the dependencies but not the project itself), and selects
matplotlib's file-only Agg backend unless ``MPLBACKEND`` says otherwise.
"""

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path

import pandas as pd

os.environ.setdefault("MPLBACKEND", "Agg")  # figures are files; no display on cluster nodes
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

logger = logging.getLogger("nam_workflow")


def _is_nam_warning(record: logging.LogRecord) -> bool:
    """Warnings of nam_core and the scripts (not errors: their traceback follows anyway)."""
    return record.levelno == logging.WARNING and record.name.startswith("nam")


@contextlib.contextmanager
def logged(path_log):
    """Send logging and warnings to ``path_log`` (nam's warnings also to stderr); log exceptions."""
    logging.basicConfig(
        filename=path_log,
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    console = logging.StreamHandler(sys.stderr)  # warnings reach the terminal, not only the log
    console.addFilter(_is_nam_warning)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    try:
        yield
    except Exception as err:
        logger.error("%s: %s", type(err).__name__, err, exc_info=True)
        raise


def read_tsv(path, **kwargs) -> pd.DataFrame:
    """Read a workflow TSV; the individual, cell and cluster columns stay strings."""
    text = {"individual": str, "cell": str, "cluster": str, "gene": str, "cell_type": str}
    return pd.read_csv(
        path, sep="\t", dtype=text, keep_default_na=False, na_values=[""],
        float_precision="round_trip", **kwargs,
    )


def write_tsv(df: pd.DataFrame, path, index: bool = False) -> None:
    """Write a TSV atomically."""
    from nam_core.io import atomic_path

    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=index)
    logger.info("wrote %s: %d rows, %d columns", path, len(df), df.shape[1] + index)
