from _common import logged, read_annotations, read_tsv

from nam_core.inputs.degenerate import check_fittable
from nam_core.inputs.fit_inputs import FitInputs, assemble_fit_inputs, write_fit_inputs


def assemble(*, path_to_pcs, path_to_cells, path_to_matching, path_to_inputs,
             individual_column: str, individuals_without_cells: str = "drop") -> FitInputs:
    """NAM's inputs (genotype PCs, expression PCs, group) in one .npz; see nam_core.inputs.

    Data too degenerate to fit stop here, before any fit (nam_core.inputs.degenerate)."""
    cells = read_annotations(path_to_cells)
    inputs = assemble_fit_inputs(
        read_tsv(path_to_pcs, index_col="individual"), cells.obs[individual_column],
        cells.obsm["X_pca"], cells.obs_names, read_tsv(path_to_matching),
        individuals_without_cells, source=str(path_to_cells))
    check_fittable(inputs.x, inputs.y, inputs.group, inputs.individuals, str(path_to_cells),
                   str(path_to_pcs))
    write_fit_inputs(path_to_inputs, inputs)
    return inputs


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        assemble(
            path_to_pcs=snakemake.input.pcs,
            path_to_cells=snakemake.input.cells,
            path_to_matching=snakemake.input.matching,
            path_to_inputs=snakemake.output.inputs,
            individual_column=snakemake.params.individual_column,
            individuals_without_cells=snakemake.params.individuals_without_cells,
        )
