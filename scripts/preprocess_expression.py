from _common import logged, read_tsv

from nam_core.inputs.expression import preprocess_h5ad


def preprocess_cells(path_counts, path_matching, path_out, individual_column: str, settings: dict,
                     counts_layer=None, threads: int = 1):
    """QC, normalise and PCA the cells of the individuals kept by the matching step.

    Streams the counts in row blocks (memory does not grow with the cells); returns the summary.
    """
    matching = read_tsv(path_matching)
    kept = matching.loc[matching["in_genotypes"] & (matching["action"] == "kept"), "individual"]
    return preprocess_h5ad(path_counts, path_out, individual_key=individual_column,
                           individuals=kept, counts_layer=counts_layer, threads=threads,
                           **settings)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        preprocess_cells(
            snakemake.input.counts,
            snakemake.input.matching,
            snakemake.output.cells,
            snakemake.params.individual_column,
            snakemake.params.settings,
            snakemake.params.counts_layer,
            snakemake.threads,
        )
