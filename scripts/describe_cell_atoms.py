from _common import logged, logger, read_tsv, write_tsv

from nam_core.results.cell_types import atom_substates


def describe(path_groups, path_names, path_type_names, path_markers, path_out):
    """cell_types/atoms.tsv: each NAM atom as a sub-state of its cell type."""
    table = atom_substates(read_tsv(path_groups), read_tsv(path_names), read_tsv(path_type_names),
                           read_tsv(path_markers))
    write_tsv(table, path_out)  # atomically
    logger.info("wrote %s: %d atoms in %d cell types", path_out, len(table),
                table["group"].nunique())


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        describe(snakemake.input.groups, snakemake.input.names, snakemake.input.type_names,
                 snakemake.input.markers, snakemake.output.atoms)
