rule plot_genotype_scree:
    input:
        eigenvalues=out("genotypes/eigenvalues.tsv"),
    output:
        png=report(
            out("figures/genotype_scree.png"),
            caption="report/genotype_scree.rst",
            category="Figures",
            labels={"figure": "Genotype scree plot"},
        ),
        pdf=out("figures/genotype_scree.pdf"),
    log:
        out("logs/plot_genotype_scree.log"),
    benchmark:
        out("benchmarks/plot_genotype_scree.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        producers=get_producers,
        nam_version=NAM_VERSION,
    message:
        "Plotting the genotype scree plot"
    script:
        "../scripts/plot_genotype_scree.py"


rule plot_genotype_pcs:
    input:
        individuals=out("individuals.tsv"),
        eigenvalues=out("genotypes/eigenvalues.tsv"),
    output:
        png=report(
            out("figures/genotype_pcs.png"),
            caption="report/genotype_pcs.rst",
            category="Figures",
            labels={"figure": "Genotype PCs by individual cluster"},
        ),
        pdf=out("figures/genotype_pcs.pdf"),
    log:
        out("logs/plot_genotype_pcs.log"),
    benchmark:
        out("benchmarks/plot_genotype_pcs.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        producers=get_producers,
        nam_version=NAM_VERSION,
    message:
        "Plotting genotype PC1 vs PC2 coloured by NAM individual cluster"
    script:
        "../scripts/plot_genotype_pcs.py"


rule plot_umap:
    input:
        cells=out("cells.h5ad"),
    output:
        png=report(
            out("figures/umap_cell_clusters.png"),
            caption="report/umap_cell_clusters.rst",
            category="Figures",
            labels={"figure": "UMAP by cell cluster"},
        ),
        pdf=out("figures/umap_cell_clusters.pdf"),
    log:
        out("logs/plot_umap.log"),
    benchmark:
        out("benchmarks/plot_umap.tsv")
    conda:
        "../envs/nam.yaml"
    resources:
        # obs and the UMAP only: 0.8 GB at 1.2M cells
        mem_mb=2000,
    params:
        producers=get_producers,
        nam_version=NAM_VERSION,
    message:
        "Plotting the UMAP coloured by NAM cell cluster"
    script:
        "../scripts/plot_umap.py"


rule plot_composition:
    input:
        by_cluster=out("composition/by_individual_cluster.tsv"),
        names=out("cell_types/type_names.tsv"),
        groups=out("cell_types/groups.tsv"),
    output:
        png=report(
            out("figures/composition_heatmap.png"),
            caption="report/composition_heatmap.rst",
            category="Figures",
            labels={"figure": "Cell-type proportions by individual cluster"},
        ),
        pdf=out("figures/composition_heatmap.pdf"),
    log:
        out("logs/plot_composition.log"),
    benchmark:
        out("benchmarks/plot_composition.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        producers=get_producers,
        nam_version=NAM_VERSION,
    message:
        "Plotting the cell-type proportions of each individual cluster"
    script:
        "../scripts/plot_composition.py"


rule plot_markers:
    input:
        cells=out("cells.h5ad"),
        markers=out("cell_types/markers.tsv"),
        names=out("cell_types/type_names.tsv"),
    output:
        png=report(
            out("figures/marker_dotplot.png"),
            caption="report/marker_dotplot.rst",
            category="Figures",
            labels={"figure": "Marker dot plot"},
        ),
        pdf=out("figures/marker_dotplot.pdf"),
    log:
        out("logs/plot_markers.log"),
    benchmark:
        out("benchmarks/plot_markers.tsv")
    # on the longest chain from the fit to the summary: runs first when cores are short
    priority: 10
    conda:
        "../envs/nam.yaml"
    resources:
        # the dot plot's genes of at most markers.max_cells_per_cluster cells per type
        mem_mb=4000,
    params:
        producers=get_producers,
        n_per_cluster=config["markers"]["n_dotplot"],
        max_cells_per_cluster=config["markers"]["max_cells_per_cluster"],
        nam_version=NAM_VERSION,
    message:
        "Plotting the top {params.n_per_cluster} markers of each NAM cell cluster"
    script:
        "../scripts/plot_markers.py"


rule plot_elbo_traces:
    input:
        traces=out("fit/elbo_traces.tsv"),
        restarts=out("fit/restarts.tsv"),
    output:
        png=report(
            out("figures/elbo_traces.png"),
            caption="report/elbo_traces.rst",
            category="Figures",
            labels={"figure": "ELBO traces of the restarts"},
        ),
        pdf=out("figures/elbo_traces.pdf"),
    log:
        out("logs/plot_elbo_traces.log"),
    benchmark:
        out("benchmarks/plot_elbo_traces.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        producers=get_producers,
        nam_version=NAM_VERSION,
    message:
        "Plotting the ELBO traces of all restarts"
    script:
        "../scripts/plot_elbo_traces.py"
