from _common import logged, logger, read_annotations, read_tsv

from nam_core.inputs.h5ad import annotate_matrix
from nam_core.io import atomic_path
from nam_core.results.naming import add_cell_groups, add_cell_type_names


def add(path_cells, path_matrix, path_names, path_out, path_groups=None, path_type_names=None):
    """cells.h5ad: the preprocessed cells (``path_matrix``) with the fit's annotations
    (``path_cells``, fit/cell_annotations.h5ad) and obs nam_cell_type and nam_cell_type_score and,
    given cell_types/groups.tsv and the types' names, nam_cell_group (T1, T2, ...) with
    nam_cell_type naming the group; nam_cell_cluster stays the atom.

    The annotations are read once (no X, no layer); the matrix file is copied with them.
    """
    annotations = read_annotations(path_cells)
    obs = annotations.obs
    if path_groups is None:
        obs = add_cell_type_names(obs, read_tsv(path_names))
        keys = ("nam_cell_type", "nam_cell_type_score")
    else:
        names = read_tsv(path_type_names).rename(columns={"group": "cluster"})
        obs = add_cell_type_names(add_cell_groups(obs, read_tsv(path_groups)), names,
                                  groupby="nam_cell_group")
        keys = ("nam_cell_group", "nam_cell_type", "nam_cell_type_score")
    new = {k: obs[k].values for k in keys}
    with atomic_path(path_out) as tmp:
        annotate_matrix(path_matrix, annotations, tmp, obs_columns=new, source=str(path_cells))
    logger.info("wrote %s: %d cells, types %s", path_out, len(obs),
                obs["nam_cell_type"].value_counts().to_dict())


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        add(snakemake.input.cells, snakemake.input.matrix, snakemake.input.names,
            snakemake.output.cells,
            snakemake.input.groups, snakemake.input.type_names)
