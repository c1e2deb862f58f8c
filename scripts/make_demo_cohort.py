from pathlib import Path

from _common import logged

from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.demo import make_demo_cohort


def make_demo(path_bed, settings: dict) -> dict:
    """Write the demo cohort beside ``path_bed`` (genotypes.bed/.bim/.fam, counts, truth)."""
    return make_demo_cohort(Path(path_bed).parent, CohortSpec(**settings))


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        paths = make_demo(snakemake.output.bed, snakemake.params.settings)
        assert str(paths["counts"]) == snakemake.output.counts, paths
