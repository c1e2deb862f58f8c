rule preprocess_expression:
    input:
        counts=get_counts(),
        matching=out("matching/individuals.tsv"),
    output:
        cells=out("expression/preprocessed.h5ad"),
    log:
        out("logs/preprocess_expression.log"),
    benchmark:
        out("benchmarks/preprocess_expression.tsv")
    conda:
        "../envs/nam.yaml"
    threads: 2
    resources:
        # streamed in blocks of cells: 0.9 GB at 127k cells, 1.3 GB at 1.2M (README)
        mem_mb=4000,
    params:
        producers=get_producers,
        individual_column=get_individual_column(),
        counts_layer=get_counts_layer(),
        settings=get_preprocess_settings(),
        nam_version=NAM_VERSION,
    message:
        "QC, normalisation and {params.settings[n_pcs]} expression PCs of {input.counts}"
    script:
        "../scripts/preprocess_expression.py"


rule compute_umap:
    input:
        cells=out("expression/preprocessed.h5ad"),
    output:
        umap=out("expression/umap.tsv"),
    log:
        out("logs/compute_umap.log"),
    benchmark:
        out("benchmarks/compute_umap.tsv")
    conda:
        "../envs/nam.yaml"
    # one: umap-learn runs single-threaded with a fixed seed (CPU seconds = wall seconds at 1.2M
    # cells), so a second thread would only keep the fit jobs waiting
    threads: 1
    resources:
        # reads the PCs only; UMAP fitted on at most umap_max_cells, the rest placed as many at a
        # time: 1.5 GB at 1.2M cells (README)
        mem_mb=4000,
    params:
        producers=get_producers,
        n_neighbors=config["expression"]["n_neighbors"],
        seed=config["expression"]["seed"],
        max_cells=config["expression"]["umap_max_cells"],
        placement=config["expression"]["umap_placement"],
        nam_version=NAM_VERSION,
    message:
        "Neighbour graph and UMAP of the cells in {input.cells}"
    script:
        "../scripts/compute_umap.py"


rule cluster_cells_leiden:
    input:
        cells=out("expression/preprocessed.h5ad"),
    output:
        leiden=out("expression/leiden.tsv"),
    log:
        out("logs/cluster_cells_leiden.log"),
    benchmark:
        out("benchmarks/cluster_cells_leiden.tsv")
    conda:
        "../envs/nam.yaml"
    threads: 2
    resources:
        mem_mb=lambda wildcards, input: max(4000, 4 * input.size_mb),
    params:
        resolutions=config["expression"]["leiden_resolutions"],
        n_neighbors=config["expression"]["n_neighbors"],
        seed=config["expression"]["seed"],
        nam_version=NAM_VERSION,
    message:
        "Leiden clusters of the cells in {input.cells} (the reference NAM is compared with)"
    script:
        "../scripts/cluster_cells_leiden.py"
