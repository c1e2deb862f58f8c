import logging

from _common import logged, read_tsv

from nam_core.inputs.expression import preprocess, read_counts
from nam_core.io import atomic_path


def preprocess_cells(path_counts, path_matching, path_out, individual_column: str, settings: dict):
    """QC, normalise and PCA the cells of the individuals kept by the matching step."""
    matching = read_tsv(path_matching)
    kept = matching.loc[matching["in_genotypes"] & (matching["action"] == "kept"), "individual"]
    adata = read_counts(path_counts, individual_column)
    keep = adata.obs[individual_column].astype(str).str.strip().isin(kept).to_numpy()
    logging.getLogger(__name__).info("%d of %d cells belong to kept individuals", keep.sum(), keep.size)
    adata = preprocess(adata[keep].copy(), individual_key=individual_column, **settings)
    with atomic_path(path_out) as tmp:
        adata.write_h5ad(tmp, compression="lzf")
    return adata


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        preprocess_cells(
            snakemake.input.counts,
            snakemake.input.matching,
            snakemake.output.cells,
            snakemake.params.individual_column,
            snakemake.params.settings,
        )
