from _common import logged, read_tsv

from nam_core.results.figure_style import save_figure
from nam_core.results.plots import plot_genotype_pcs


def plot(path_individuals, path_eigenvalues, path_png, path_pdf):
    """Genotype PC1 vs PC2 of the individuals, coloured by NAM individual cluster."""
    individuals = read_tsv(path_individuals)
    eigen = read_tsv(path_eigenvalues)
    if "PC2" not in individuals.columns:  # a single genotype PC: plot it against itself
        individuals["PC2"] = individuals["PC1"]
    fig = plot_genotype_pcs(individuals, individuals["cluster"], eigen["explained_variance_ratio"])
    save_figure(fig, path_png, path_pdf)


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        plot(
            snakemake.input.individuals,
            snakemake.input.eigenvalues,
            snakemake.output.png,
            snakemake.output.pdf,
        )
