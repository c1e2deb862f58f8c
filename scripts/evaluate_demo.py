import pandas as pd
from _common import logged, read_annotations, read_tsv, write_tsv

from nam_core.results.evaluate import evaluate_demo

NO_SCORE = {"*": "a cluster without a known cell type has no recovery score"}


def evaluate(paths: dict, path_evaluation, path_recovery, thresholds: dict):
    """ARI of the clusters against the demo truth and marker recovery, as TSVs."""
    obs = read_annotations(paths["cells"]).obs
    cells = pd.DataFrame({"cell": obs.index.astype(str), "cluster": obs["nam_cell_cluster"].astype(str)})
    if "nam_cell_group" in obs.columns:  # cell types, scored beside the atoms
        cells["type"] = obs["nam_cell_group"].astype(str).to_numpy()
    individuals = read_tsv(paths["individuals"])
    if "individual_groups" in paths:  # the individual groups, scored beside the clusters
        groups = read_tsv(paths["individual_groups"]).set_index("individual")["group"]
        individuals["group"] = groups.reindex(individuals["individual"].astype(str)).to_numpy()
    evaluation, recovery = evaluate_demo(
        individuals,
        cells,
        read_tsv(paths["markers"]),
        read_tsv(paths["truth_individuals"]),
        read_tsv(paths["truth_cells"]),
        read_tsv(paths["known_markers"]),
        **thresholds,
        leiden=read_tsv(paths["leiden"]) if "leiden" in paths else None,
    )
    write_tsv(evaluation, path_evaluation, missing={"threshold": "a metric reported without a pass threshold"})
    write_tsv(recovery, path_recovery, missing=NO_SCORE)
    return evaluation


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        p = snakemake.params
        evaluate(
            dict(snakemake.input.items()),
            snakemake.output.evaluation,
            snakemake.output.marker_recovery,
            {k: getattr(p, k) for k in ("min_ari_individuals", "min_ari_cells", "min_known_markers")},
        )
