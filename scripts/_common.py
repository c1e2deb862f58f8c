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


def _console_handler() -> logging.Handler:
    """Warnings of nam_core and of the scripts on stderr, which Snakemake shows on the console."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(lambda record: record.name.startswith(("nam_core", "nam_workflow", "__")))
    handler.setFormatter(logging.Formatter("NAM %(levelname)s: %(message)s"))
    return handler


MADE_BY: dict[str, str] = {}
"""The rule that wrote each input of this job ({path: rule}), named when an input is damaged."""


@contextlib.contextmanager
def logged(path_log, made_by: dict | None = None):
    """Send logging and warnings to ``path_log`` (and nam warnings to the console too); log any
    exception before re-raising it. ``made_by`` ({input path: rule}) is kept in MADE_BY."""
    MADE_BY.update(made_by or {})
    logging.basicConfig(
        filename=path_log,
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger().addHandler(_console_handler())
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    try:
        yield
    except Exception as err:
        logger.error("%s: %s", type(err).__name__, err, exc_info=True)
        raise


def _read_csv(path, **kwargs) -> pd.DataFrame:
    text = {"individual": str, "cell": str, "cluster": str, "gene": str, "cell_type": str}
    return pd.read_csv(
        path, sep="\t", dtype=text, keep_default_na=False, na_values=[""],
        float_precision="round_trip", **kwargs,
    )


def read_tsv(path, **kwargs) -> pd.DataFrame:
    """Read a workflow TSV; the individual, cell and cluster columns stay strings.

    A damaged file raises NAMInputError naming it, the rule that made it and the fix.
    """
    from nam_core.io import read_intermediate

    return read_intermediate(path, _read_csv, MADE_BY.get(str(path)), **kwargs)


def read_h5ad(path, **kwargs):
    """anndata.read_h5ad of an intermediate; a damaged file raises NAMInputError (see read_tsv)."""
    import anndata as ad

    from nam_core.io import read_intermediate

    return read_intermediate(path, ad.read_h5ad, MADE_BY.get(str(path)), **kwargs)


def read_npz(path) -> dict:
    """Every array of an .npz intermediate, loaded; a damaged file raises NAMInputError."""
    import numpy as np

    from nam_core.io import read_intermediate

    def load(p):
        with np.load(p, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    return read_intermediate(path, load, MADE_BY.get(str(path)))


def load_fit(path):
    """NAM.load of a saved fit; a damaged file raises NAMInputError (see read_tsv)."""
    from nam_core import NAM
    from nam_core.io import read_intermediate

    return read_intermediate(path, NAM.load, MADE_BY.get(str(path)))


def write_tsv(df: pd.DataFrame, path, index: bool = False) -> None:
    """Write a TSV atomically."""
    from nam_core.io import atomic_path

    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=index)
    logger.info("wrote %s: %d rows, %d columns", path, len(df), df.shape[1] + index)
