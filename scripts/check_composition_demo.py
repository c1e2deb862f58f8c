from _common import logged, read_annotations, read_tsv, write_tsv

from nam_core.results.checks import check_composition


def check(paths: dict, path_evaluation, path_detail, min_true_effect: float):
    """The composition analysis per cell type (obs nam_cell_group, names of the types) scored
    against the demo truth (differences, propeller-style calls, names, permutation)."""
    obs = read_annotations(paths["cells"]).obs
    types = obs[["individual", "cell_type", "nam_cell_group"]].rename(
        columns={"nam_cell_group": "nam_cell_cluster"})
    evaluation, detail = check_composition(
        types, read_tsv(paths["groups"]), read_tsv(paths["differences"]),
        read_tsv(paths["names"]).rename(columns={"group": "cluster"}),
        read_tsv(paths["permutation"]), min_true_effect=min_true_effect,
        propeller=read_tsv(paths["propeller"]))
    write_tsv(evaluation, path_evaluation, missing={"threshold": "a metric reported without a pass threshold"})
    write_tsv(detail, path_detail, missing={
        "threshold": "a metric reported without a pass threshold",
        "propeller_called": "a contrast the propeller-style table does not test (no 'vs rest' with three or more groups)"})
    return evaluation


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        check(dict(snakemake.input.items()), snakemake.output.evaluation, snakemake.output.detail,
              snakemake.params.min_true_effect)
