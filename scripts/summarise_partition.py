import numpy as np
import pandas as pd
from _common import logged, logger, write_tsv

from nam_core import NAM
from nam_core.results.partition import alternatives_table, coclustering


def summarise(path_fit, path_inputs, path_coclustering, path_alternatives, near_tie_nats: float):
    """Co-clustering matrix of the individuals and the merge search's alternative partitions."""
    model = NAM.load(path_fit)
    with np.load(path_inputs, allow_pickle=False) as data:
        individuals = data["individuals"]
    matrix = pd.DataFrame(coclustering(model.rho_), index=pd.Index(individuals, name="individual"),
                          columns=individuals)
    write_tsv(matrix, path_coclustering, index=True)
    table, note = alternatives_table(model, near_tie_nats)
    logger.info(note)
    write_tsv(table, path_alternatives)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        summarise(snakemake.input.fit, snakemake.input.inputs, snakemake.output.coclustering,
                  snakemake.output.alternatives, snakemake.params.near_tie_nats)
