rule assemble_fit_inputs:
    input:
        pcs=out("genotypes/pcs.tsv"),
        cells=out("expression/preprocessed.h5ad"),
        matching=out("matching/individuals.tsv"),
    output:
        inputs=out("fit/inputs.npz"),
    log:
        out("logs/assemble_fit_inputs.log"),
    benchmark:
        out("benchmarks/assemble_fit_inputs.tsv")
    conda:
        "../envs/nam.yaml"
    resources:
        # obs and the PCs only: 0.9 GB at 1.2M cells
        mem_mb=2000,
    params:
        producers=get_producers,
        individual_column=get_individual_column(),
        individuals_without_cells=config["matching"]["individuals_without_cells"],
        nam_version=NAM_VERSION,
    message:
        "Collecting genotype PCs x (individuals) and expression PCs y (cells) for NAM"
    script:
        "../scripts/assemble_fit_inputs.py"


rule fit_nam:
    input:
        inputs=out("fit/inputs.npz"),
    output:
        fit=out("fit/restarts/seed{seed}.npz"),
    log:
        out("logs/fit_nam/seed{seed}.log"),
    benchmark:
        out("benchmarks/fit_nam/seed{seed}.tsv")
    conda:
        "../envs/nam.yaml"
    threads: get_fit_settings()["ranks"]
    resources:
        mem_mb=lambda wildcards, input: max(2000, 20 * input.size_mb),
    params:
        producers=get_producers,
        settings=get_fit_settings(),
        checkpoint=lambda wildcards: out(f"fit/checkpoints/seed{wildcards.seed}.npz"),
        nam_version=NAM_VERSION,
    message:
        "Fitting NAM, restart with seed {wildcards.seed} (device {params.settings[device]})"
    script:
        "../scripts/fit_nam.py"


rule select_best_fit:
    input:
        fits=get_restart_fits(),
    output:
        best=get_selected_fit(),
        restarts=report(
            out("fit/restarts.tsv"),
            caption="report/restarts.rst",
            category="NAM fit",
        ),
        traces=out("fit/elbo_traces.tsv"),
    log:
        out("logs/select_best_fit.log"),
    benchmark:
        out("benchmarks/select_best_fit.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        producers=get_producers,
        nam_version=NAM_VERSION,
    message:
        "Keeping the restart with the largest ELBO among {input.fits}"
    script:
        "../scripts/select_best_fit.py"


if coarse_to_fine():

    rule refine_fit:
        input:
            coarse=out("fit/best_coarse.npz"),
            inputs=out("fit/inputs.npz"),
        output:
            fit=out("fit/best.npz"),
        log:
            out("logs/refine_fit.log"),
        benchmark:
            out("benchmarks/refine_fit.tsv")
        conda:
            "../envs/nam.yaml"
        # the one job on the critical path once the restarts are done: two threads (as the other
        # single heavy jobs), or one per rank
        threads: max(2, get_fit_settings()["ranks"])
        resources:
            # the fit on all cells from the chosen restart's labels: 1.3 GB at 1.2M cells, 4.7 GB
            # at 4.8M
            mem_mb=lambda wildcards, input: max(4000, 30 * input.size_mb),
        params:
            producers=get_producers,
            settings=get_fit_settings(),
            checkpoint=out("fit/checkpoints/refine.npz"),
            nam_version=NAM_VERSION,
        message:
            "Refining the best coarse restart on all cells"
        script:
            "../scripts/refine_fit.py"


rule write_results:
    input:
        fit=out("fit/best.npz"),
        inputs=out("fit/inputs.npz"),
        cells=out("expression/preprocessed.h5ad"),
        umap=out("expression/umap.tsv"),
        pcs=out("genotypes/pcs.tsv"),
    output:
        cells=out("fit/cell_annotations.h5ad"),
        individuals=report(
            out("individuals.tsv"),
            caption="report/individuals.rst",
            category="Results",
        ),
        counts=out("composition/cells_per_individual.tsv"),
        proportions=out("composition/proportions_per_individual.tsv"),
        by_cluster=report(
            out("composition/by_individual_cluster.tsv"),
            caption="report/composition_table.rst",
            category="Results",
        ),
    log:
        out("logs/write_results.log"),
    benchmark:
        out("benchmarks/write_results.tsv")
    # on the longest chain from the fit to the summary: runs first when cores are short
    priority: 10
    conda:
        "../envs/nam.yaml"
    resources:
        # obs, obsm and uns without X: O(cells), about 1 GB at 1.2M cells
        mem_mb=4000,
    params:
        producers=get_producers,
        individual_column=get_individual_column(),
        # the pool column checked against the individual clusters (warning in the log)
        batch_key=config["expression"].get("batch_key") or "pool",
        nam_version=NAM_VERSION,
    message:
        "Writing NAM clusters of cells ({output.cells}) and individuals ({output.individuals})"
    script:
        "../scripts/write_results.py"


rule find_markers:
    input:
        cells=out("fit/cell_annotations.h5ad"),
        matrix=out("expression/preprocessed.h5ad"),
    output:
        markers=report(
            out("markers.tsv"),
            caption="report/markers_table.rst",
            category="Results",
        ),
    log:
        out("logs/find_markers.log"),
    benchmark:
        out("benchmarks/find_markers.tsv")
    conda:
        "../envs/nam.yaml"
    resources:
        # at most markers.max_cells_per_cluster rows per cluster: 1.4 GB at 1.2M cells
        mem_mb=4000,
    params:
        producers=get_producers,
        n_genes=config["markers"]["n_genes"],
        method=config["markers"]["method"],
        max_cells_per_cluster=config["markers"]["max_cells_per_cluster"],
        groupby="nam_cell_cluster",
        nam_version=NAM_VERSION,
    message:
        "Ranking marker genes ({params.method}) of each NAM cell atom"
    script:
        "../scripts/find_markers.py"


rule find_type_markers:
    input:
        cells=out("cells.h5ad"),
        matrix=out("expression/preprocessed.h5ad"),
    output:
        markers=report(
            out("cell_types/markers.tsv"),
            caption="report/type_markers_table.rst",
            category="Cell types",
        ),
    log:
        out("logs/find_type_markers.log"),
    benchmark:
        out("benchmarks/find_type_markers.tsv")
    # on the longest chain from the fit to the summary: runs first when cores are short
    priority: 10
    conda:
        "../envs/nam.yaml"
    resources:
        # at most markers.max_cells_per_cluster rows per type
        mem_mb=4000,
    params:
        producers=get_producers,
        n_genes=config["markers"]["n_genes"],
        method=config["markers"]["method"],
        max_cells_per_cluster=config["markers"]["max_cells_per_cluster"],
        groupby="nam_cell_group",
        nam_version=NAM_VERSION,
    message:
        "Ranking marker genes ({params.method}) of each cell type"
    script:
        "../scripts/find_markers.py"


rule describe_cell_atoms:
    input:
        groups=out("cell_types/groups.tsv"),
        names=out("cell_types/names.tsv"),
        type_names=out("cell_types/type_names.tsv"),
        markers=out("markers.tsv"),
    output:
        atoms=report(
            out("cell_types/atoms.tsv"),
            caption="report/cell_type_atoms.rst",
            category="Cell types",
        ),
    log:
        out("logs/describe_cell_atoms.log"),
    benchmark:
        out("benchmarks/describe_cell_atoms.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        nam_version=NAM_VERSION,
    message:
        "Each NAM cell atom as a sub-state of its cell type"
    script:
        "../scripts/describe_cell_atoms.py"
