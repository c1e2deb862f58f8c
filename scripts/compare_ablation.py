import numpy as np
from _common import logged, write_tsv

from nam_core import NAM
from nam_core.models import CAM, DPMixture
from nam_core.results.ablation import compare_fits


def compare(path_nam, path_cam, path_dpmix, path_inputs, path_out):
    """Between-model ARIs and genotype homogeneity of NAM, CAM and the DP mixture on y."""
    with np.load(path_inputs, allow_pickle=False) as data:
        x = data["x"]
    table = compare_fits(NAM.load(path_nam), CAM.load(path_cam), DPMixture.load(path_dpmix), x)
    write_tsv(table, path_out)
    return table


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        compare(snakemake.input.nam, snakemake.input.cam, snakemake.input.dpmix_y,
                snakemake.input.inputs, snakemake.output.comparison)
