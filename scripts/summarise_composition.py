from _common import logged, read_tsv, write_tsv

from nam_core import NAM
from nam_core.inputs.fit_inputs import read_fit_inputs
from nam_core.results.composition import composition_tables


def summarise(path_fit, path_counts, path_individuals, path_inputs, path_names, paths_out: dict,
              settings: dict):
    """Posterior composition; differences and tests between genotype-only groups."""
    names = read_tsv(path_names)
    tables = composition_tables(NAM.load(path_fit), read_tsv(path_counts),
                                read_tsv(path_individuals),
                                dict(zip(names["cluster"], names["cell_type"], strict=True)),
                                inputs=read_fit_inputs(path_inputs), **settings)
    for key, table in tables.items():
        write_tsv(table, paths_out[key])
    return tables


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        summarise(snakemake.input.fit, snakemake.input.counts, snakemake.input.individuals,
                  snakemake.input.inputs, snakemake.input.names, dict(snakemake.output.items()), snakemake.params.settings)
