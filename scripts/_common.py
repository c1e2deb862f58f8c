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

os.environ.setdefault("MPLBACKEND", "Agg")  # figures are files; no display on cluster nodes
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nam_core.io import write_tsv  # noqa: E402,F401  (after the path is set)

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
    exception before re-raising it. ``made_by`` ({input path: rule}) is kept in MADE_BY.

    The job ends itself, leaving no partial output, when the Snakemake that started it is gone
    (nam_core.parent_watch)."""
    MADE_BY.update(made_by or {})
    logging.basicConfig(
        filename=path_log,
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger().addHandler(_console_handler())
    from nam_core.parent_watch import watch_parent

    watch_parent()  # a job ends within seconds when the Snakemake that started it is killed
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    try:
        yield
    except Exception as err:
        logger.error("%s: %s", type(err).__name__, err, exc_info=True)
        raise


def read_tsv(path, **kwargs):
    """Read a workflow TSV; the individual, cell and cluster columns stay strings.

    A damaged file raises NAMInputError naming it, the rule that made it and the fix.
    """
    from nam_core.intermediates import read_intermediate
    from nam_core.io import read_tsv as read_table

    return read_intermediate(path, read_table, MADE_BY.get(str(path)), **kwargs)


def read_atom_to_group(path):
    """{atom (C<l>): cell type (T<g>)} of cell_types/groups.tsv."""
    groups = read_tsv(path)
    return dict(zip(groups["atom"].astype(str), groups["group"].astype(str), strict=True))


def read_cell_type_names(path):
    """{cluster or group: cell_type} of a names table (cell_types/names.tsv or type_names.tsv)."""
    table = read_tsv(path)
    key = "group" if "group" in table.columns else "cluster"
    return dict(zip(table[key].astype(str), table["cell_type"], strict=True))


def read_annotations(path):
    """obs, var, obsm and uns of an intermediate .h5ad without X or layers (X is None); a
    damaged file raises NAMInputError (see read_tsv). Take rows or columns of X with
    nam_core.inputs.h5ad.read_rows / read_columns."""
    from nam_core.inputs.h5ad import read_annotations as read
    from nam_core.intermediates import read_intermediate

    return read_intermediate(path, read, MADE_BY.get(str(path)))


def read_fit_inputs(path):
    """The fit inputs (nam_core.inputs.fit_inputs); a damaged file raises NAMInputError."""
    from nam_core.inputs.fit_inputs import read_fit_inputs as read
    from nam_core.intermediates import read_intermediate

    return read_intermediate(path, read, MADE_BY.get(str(path)))


def load_fit(path):
    """NAM.load of a saved fit; a damaged file raises NAMInputError (see read_tsv)."""
    from nam_core import NAM
    from nam_core.intermediates import read_intermediate

    return read_intermediate(path, NAM.load, MADE_BY.get(str(path)))
