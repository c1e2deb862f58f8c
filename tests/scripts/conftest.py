import importlib
import sys
from pathlib import Path

import pytest

from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.demo import make_demo_cohort

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

TINY = dict(n_individuals=30, n_ancestries=3, mean_cells=40, n_snps=2000, fst=0.05, seed=3)


def load_script(name: str):
    """Import scripts/<name>.py as a module (its Snakemake adapter does not run)."""
    return importlib.import_module(name)


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    """A tiny demo cohort: PLINK files, counts.h5ad and the truth tables (read-only)."""
    return make_demo_cohort(tmp_path_factory.mktemp("cohort") / "demo_cohort", CohortSpec(**TINY))
