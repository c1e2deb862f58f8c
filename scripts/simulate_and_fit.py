from _common import logged

from nam_core.study.job import run_job, write_run


def simulate_and_fit(spec: dict, path_json, threads: int = 1) -> dict:
    """Simulate one replicate, fit one method, write its metrics and parameters as JSON."""
    result = run_job(spec, threads=threads)
    write_run(result, path_json)
    return result


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        simulate_and_fit(snakemake.params.spec, snakemake.output.json, snakemake.threads)
