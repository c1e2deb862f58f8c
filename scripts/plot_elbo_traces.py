from _common import logged, read_tsv

from nam_core.results.figure_style import save_figure
from nam_core.results.plots import plot_elbo_traces


def plot(path_traces, path_restarts, path_png, path_pdf):
    """ELBO traces of all restarts, the kept one highlighted."""
    restarts = read_tsv(path_restarts)
    best = int(restarts.loc[restarts["kept"], "seed"].iloc[0])
    save_figure(plot_elbo_traces(read_tsv(path_traces), best), path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        plot(
            snakemake.input.traces,
            snakemake.input.restarts,
            snakemake.output.png,
            snakemake.output.pdf,
        )
