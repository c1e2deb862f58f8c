from _common import logged

from nam_core.study.aggregation import aggregate


def aggregate_simulation(paths_runs, path_metrics, path_summary, path_checks, checks: dict):
    """Every run's JSON -> tidy metrics, summary (median, IQR) and the checks, as TSV."""
    return aggregate(paths_runs, path_metrics, path_summary, path_checks, checks)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        aggregate_simulation(
            list(snakemake.input.runs),
            snakemake.output.metrics,
            snakemake.output.summary,
            snakemake.output.checks,
            dict(snakemake.params.checks),
        )
