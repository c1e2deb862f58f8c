from _common import logged

from nam_core.results.tables import write_results

if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        write_results(
            path_to_fit=snakemake.input.fit,
            path_to_inputs=snakemake.input.inputs,
            path_to_cells=snakemake.input.cells,
            path_to_umap=snakemake.input.umap,
            path_to_pcs=snakemake.input.pcs,
            path_to_cells_out=snakemake.output.cells,
            path_to_individuals=snakemake.output.individuals,
            path_to_counts=snakemake.output.counts,
            path_to_proportions=snakemake.output.proportions,
            path_to_by_cluster=snakemake.output.by_cluster,
            made_by=snakemake.params.producers,
            batch_key=snakemake.params.batch_key,
        )
