from _common import logged, read_tsv

from nam_core.results.figure_style import save_figure
from nam_core.results.plots import plot_scree


def plot(path_eigenvalues, path_png, path_pdf):
    """Scree plot of the genotype PCs."""
    eigen = read_tsv(path_eigenvalues)
    fig = plot_scree(eigen["explained_variance_ratio"], int(eigen["n_snps_used"].iloc[0]))
    save_figure(fig, path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        plot(snakemake.input.eigenvalues, snakemake.output.png, snakemake.output.pdf)
