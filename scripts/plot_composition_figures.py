import numpy as np
from _common import logged, read_tsv

from nam_core.results.composition_plots import (
    plot_coclustering,
    plot_composition_posterior,
    plot_differences_forest,
)
from nam_core.results.figure_style import save_figure
from nam_core.results.partition import coclustering_order


def plot(paths: dict, out: dict, null_log_ratio: float | None = None):
    """Stacked composition bars, forest plot of the differences (with the null band of
    ``null_log_ratio``), co-clustering heatmap."""
    names = read_tsv(paths["names"])  # cell_types/type_names.tsv (group) or names.tsv (cluster)
    key = "group" if "group" in names.columns else "cluster"
    names = dict(zip(names[key].astype(str), names["cell_type"], strict=True))
    save_figure(plot_composition_posterior(read_tsv(paths["posterior"]), names),
                out["bars_png"], out["bars_pdf"])
    save_figure(plot_differences_forest(read_tsv(paths["differences"]),
                                        read_tsv(paths["propeller"]), names, null_log_ratio),
                out["forest_png"], out["forest_pdf"])
    matrix = read_tsv(paths["coclustering"], index_col="individual")
    clusters = read_tsv(paths["individuals"], index_col="individual").loc[matrix.index, "cluster"]
    values = matrix.to_numpy(dtype=np.float64)
    save_figure(plot_coclustering(values, coclustering_order(values), clusters.to_numpy()),
                out["cocluster_png"], out["cocluster_pdf"])


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        plot(dict(snakemake.input.items()), dict(snakemake.output.items()),
             snakemake.params.null_log_ratio)
