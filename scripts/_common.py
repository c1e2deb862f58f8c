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

from nam_core.io import read_tsv, write_tsv  # noqa: E402,F401  (after the path is set)

logger = logging.getLogger("nam_workflow")


@contextlib.contextmanager
def logged(path_log):
    """Send logging and warnings to ``path_log``; log any exception before re-raising it."""
    logging.basicConfig(
        filename=path_log,
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    try:
        yield
    except Exception as err:
        logger.error("%s: %s", type(err).__name__, err, exc_info=True)
        raise
