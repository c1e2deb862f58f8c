from _common import logged, logger, read_atom_to_group, read_tsv, write_tsv

from nam_core.results.individual_groups import TABLE_MISSING, group_cohort


def group(path_to_individuals, path_to_counts, path_to_cell_types, path_to_groups,
          path_to_members, min_genotype_error, max_share_difference):
    """individual_groups/groups.tsv (one row per NAM individual cluster: its group G1, G2, ...)
    and individual_groups/individuals.tsv (each individual's cluster and group)."""
    groups, members = group_cohort(read_tsv(path_to_individuals), read_tsv(path_to_counts),
                                   read_atom_to_group(path_to_cell_types),
                                   min_genotype_error, max_share_difference)
    write_tsv(groups.table, path_to_groups, missing=TABLE_MISSING)  # atomically
    write_tsv(members, path_to_members)
    logger.info("wrote %s and %s: %d individual clusters in %d groups", path_to_groups,
                path_to_members, len(groups.cluster_to_group),
                len(set(groups.cluster_to_group.values())))


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        group(
            path_to_individuals=snakemake.input.individuals,
            path_to_counts=snakemake.input.counts,
            path_to_cell_types=snakemake.input.cell_types,
            path_to_groups=snakemake.output.groups,
            path_to_members=snakemake.output.individuals,
            min_genotype_error=snakemake.params.min_genotype_error,
            max_share_difference=snakemake.params.max_share_difference,
        )
