import anndata as ad
from _common import logged, logger, read_tsv

from nam_core.io import atomic_path
from nam_core.results.naming import add_cell_type_names


def add(path_cells, path_names, path_out):
    """cells.h5ad: the clustered cells with obs nam_cell_type and nam_cell_type_score."""
    adata = ad.read_h5ad(path_cells)
    adata.obs = add_cell_type_names(adata.obs, read_tsv(path_names))
    with atomic_path(path_out) as tmp:
        adata.write_h5ad(tmp, compression="lzf")
    logger.info("wrote %s: %d cells, types %s", path_out, adata.n_obs,
                adata.obs["nam_cell_type"].value_counts().to_dict())


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        add(snakemake.input.cells, snakemake.input.names, snakemake.output.cells)
