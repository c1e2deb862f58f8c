from pathlib import Path

from _common import logged

from nam_core.results.manifest import run_manifest, write_manifest
from nam_core.results.summary import write_summary


def summarise(path_summary, path_manifest, config: dict, data_inputs: dict, nam_version: str,
              exclude=()):
    """summary.md from the tables in the results folder, then manifest.json of the whole run.

    The results folder is the one holding ``path_summary`` (results/<cohort>); ``data_inputs``
    ({role: path}) are the files the run read; ``exclude`` the paths left out of the manifest.
    """
    folder = Path(path_summary).parent
    write_summary(folder, config["cohort"], path_summary)
    manifest = run_manifest(folder, config, data_inputs, nam_version,
                            exclude=[path_manifest, *exclude])
    write_manifest(path_manifest, manifest)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        summarise(snakemake.output.summary, snakemake.output.manifest, snakemake.params.config,
                  snakemake.params.data_inputs, snakemake.params.nam_version,
                  exclude=[snakemake.log[0], snakemake.params.benchmark])
