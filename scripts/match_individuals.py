from _common import logged, write_tsv

from nam_core.inputs.batch import check_batch_column
from nam_core.inputs.cohort import match_individuals
from nam_core.inputs.counts_file import open_counts
from nam_core.inputs.degenerate import check_enough_individuals
from nam_core.inputs.expression import read_cell_table
from nam_core.inputs.genotypes import validate_plink


def match(
    path_bfile,
    path_counts,
    path_table,
    individual_column: str,
    individuals_without_cells: str = "drop",
    cells_without_genotype: str = "drop",
    max_lost_fraction: float | None = None,
    n_pcs: int | None = None,
    chunk_snps: int = 20_000,
    snp_filters: dict | None = None,
    counts_layer: str | None = None,
    batch_key: str | None = None,
):
    """Validate both inputs, match the .fam IIDs to the cells' individuals, write the table.

    A batch column (``batch_key``) is checked first, from the cells' table alone.
    """
    if batch_key:
        with open_counts(path_counts, counts_layer) as counts:
            check_batch_column(counts.obs, batch_key, counts.source)
    plink = validate_plink(path_bfile, n_pcs, chunk_snps=chunk_snps, **(snp_filters or {}))
    cells = read_cell_table(path_counts, individual_column, counts_layer)
    result = match_individuals(
        plink.fam["iid"],
        cells[individual_column],
        genotype_source=f"{path_bfile}.fam",
        cells_source=path_counts,
        individuals_without_cells=individuals_without_cells,
        cells_without_genotype=cells_without_genotype,
        uncalled=plink.uncalled,
        max_lost_fraction=max_lost_fraction,
    )
    if n_pcs is not None:
        check_enough_individuals(len(result.individuals), n_pcs,
                                 f"of {path_bfile}.fam with cells in {path_counts}")
    write_tsv(result.report, path_table)
    return result


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        match(
            snakemake.params.bfile,
            snakemake.input.counts,
            snakemake.output.table,
            snakemake.params.individual_column,
            snakemake.params.individuals_without_cells,
            snakemake.params.cells_without_genotype,
            snakemake.params.max_lost_fraction,
            snakemake.params.n_pcs,
            snakemake.params.chunk_snps,
            snakemake.params.snp_filters,
            snakemake.params.counts_layer,
            snakemake.params.batch_key,
        )
