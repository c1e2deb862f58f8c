rule name_cell_clusters:
    input:
        cells=out("fit/cell_annotations.h5ad"),
        matrix=out("expression/preprocessed.h5ad"),
        markers=get_marker_table(),
        groups=out("cell_types/groups.tsv"),
    output:
        names=report(
            out("cell_types/names.tsv"),
            caption="report/cell_type_names.rst",
            category="Cell types",
        ),
        type_names=report(
            out("cell_types/type_names.tsv"),
            caption="report/cell_type_type_names.rst",
            category="Cell types",
        ),
        scores=out("cell_types/scores.tsv"),
    log:
        out("logs/name_cell_clusters.log"),
    benchmark:
        out("benchmarks/name_cell_clusters.tsv")
    # on the longest chain from the fit to the summary: runs first when cores are short
    priority: 10
    conda:
        "../envs/nam.yaml"
    resources:
        # obs and sampled rows of X only: 1.0 GB at 1.2M cells (README)
        mem_mb=4000,
    params:
        producers=get_producers,
        min_score=config["naming"]["min_score"],
        min_markers=config["naming"]["min_markers"],
        overrides=config["naming"]["overrides"],
        max_cells_per_cluster=config["markers"]["max_cells_per_cluster"],
        nam_version=NAM_VERSION,
    message:
        "Naming each NAM cell cluster from the markers in {input.markers}"
    script:
        "../scripts/name_cell_clusters.py"


rule group_cell_atoms:
    input:
        cells=out("fit/cell_annotations.h5ad"),
    output:
        groups=report(
            out("cell_types/groups.tsv"),
            caption="report/cell_type_groups.rst",
            category="Cell types",
        ),
    log:
        out("logs/group_cell_atoms.log"),
    benchmark:
        out("benchmarks/group_cell_atoms.tsv")
    # on the longest chain from the fit to the summary: runs first when cores are short
    priority: 10
    conda:
        "../envs/nam.yaml"
    resources:
        # obs, the PCs and at most cell_types.max_cells cells in the grouping
        mem_mb=4000,
    params:
        producers=get_producers,
        criterion=config["cell_types"]["criterion"],
        max_cells=config["cell_types"]["max_cells"],
        seed=config["cell_types"]["seed"],
        nam_version=NAM_VERSION,
    message:
        "Grouping NAM's cell atoms into cell types ({params.criterion} criterion)"
    script:
        "../scripts/group_cell_atoms.py"


rule group_individual_clusters:
    input:
        individuals=out("individuals.tsv"),
        counts=out("composition/cells_per_individual.tsv"),
        cell_types=out("cell_types/groups.tsv"),
    output:
        groups=report(
            out("individual_groups/groups.tsv"),
            caption="report/individual_groups.rst",
            category="Individual groups",
        ),
        individuals=out("individual_groups/individuals.tsv"),
    log:
        out("logs/group_individual_clusters.log"),
    benchmark:
        out("benchmarks/group_individual_clusters.tsv")
    conda:
        "../envs/nam.yaml"
    resources:
        # three tables of one row per individual
        mem_mb=1000,
    params:
        producers=get_producers,
        min_genotype_error=config["individual_groups"]["min_genotype_error"],
        max_share_difference=config["individual_groups"]["max_share_difference"],
        nam_version=NAM_VERSION,
    message:
        "Grouping NAM's individual clusters that neither genotype nor cell types tell apart"
    script:
        "../scripts/group_individual_clusters.py"


rule add_cell_type_names:
    input:
        cells=out("fit/cell_annotations.h5ad"),
        matrix=out("expression/preprocessed.h5ad"),
        names=out("cell_types/names.tsv"),
        groups=out("cell_types/groups.tsv"),
        type_names=out("cell_types/type_names.tsv"),
    output:
        cells=out("cells.h5ad"),
    log:
        out("logs/add_cell_type_names.log"),
    benchmark:
        out("benchmarks/add_cell_type_names.tsv")
    # on the longest chain from the fit to the summary: runs first when cores are short
    priority: 10
    conda:
        "../envs/nam.yaml"
    resources:
        # obs only, the preprocessed file copied: 0.7 GB at 1.2M cells
        mem_mb=2000,
    params:
        nam_version=NAM_VERSION,
    message:
        "Adding the cell-type names to the cells: {output.cells}"
    script:
        "../scripts/add_cell_type_names.py"


rule check_marker_strength:
    input:
        cells=out("cells.h5ad"),
    output:
        permutation=report(
            out("cell_types/marker_permutation.tsv"),
            caption="report/marker_permutation.rst",
            category="Cell types",
        ),
    log:
        out("logs/check_marker_strength.log"),
    benchmark:
        out("benchmarks/check_marker_strength.tsv")
    # on the longest chain from the fit to the summary: runs first when cores are short
    priority: 10
    conda:
        "../envs/nam.yaml"
    resources:
        # at most permutation.max_cells rows of X: 1.5 GB at 1.2M cells
        mem_mb=4000,
    params:
        producers=get_producers,
        individual_column=get_individual_column(),
        settings=get_permutation_settings(),
        nam_version=NAM_VERSION,
    message:
        "Permutation test of marker strength ({params.settings[n_permutations]} permutations)"
    script:
        "../scripts/check_marker_strength.py"


rule summarise_composition:
    input:
        fit=out("fit/best.npz"),
        counts=out("composition/cells_per_individual.tsv"),
        individuals=out("individuals.tsv"),
        inputs=out("fit/inputs.npz"),
        names=out("cell_types/names.tsv"),
        groups=out("cell_types/groups.tsv"),
        type_names=out("cell_types/type_names.tsv"),
        covariates=out("covariates/donors.tsv"),
        fam=get_plink_files()["fam"],
        individual_groups=out("individual_groups/groups.tsv"),
    output:
        groups=out("composition/groups.tsv"),
        posterior=report(
            out("composition/posterior.tsv"),
            caption="report/composition_posterior_table.rst",
            category="Composition",
        ),
        differences=report(
            out("composition/differences.tsv"),
            caption="report/composition_differences_table.rst",
            category="Composition",
        ),
        propeller=report(
            out("composition/propeller.tsv"),
            caption="report/composition_propeller_table.rst",
            category="Composition",
        ),
        genotype=report(
            out("composition/genotype_association.tsv"),
            caption="report/genotype_association.rst",
            category="Composition",
        ),
        genotype_omnibus=out("composition/genotype_omnibus.tsv"),
        traits=out("composition/traits.tsv"),
        donors=out("composition/donors.tsv"),
        donor_shares_long=out("composition/donor_shares_long.tsv"),
        posterior_atoms=out("composition/posterior_atoms.tsv"),
        differences_atoms=out("composition/differences_atoms.tsv"),
        propeller_atoms=out("composition/propeller_atoms.tsv"),
        genotype_atoms=out("composition/genotype_association_atoms.tsv"),
    log:
        out("logs/summarise_composition.log"),
    benchmark:
        out("benchmarks/summarise_composition.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        settings=get_composition_settings(),
        nam_version=NAM_VERSION,
    message:
        "Composition of each individual cluster under q(u); differences and tests between genotype-only groups"
    script:
        "../scripts/summarise_composition.py"


rule summarise_partition:
    input:
        fit=out("fit/best.npz"),
        inputs=out("fit/inputs.npz"),
    output:
        coclustering=out("fit/coclustering.tsv"),
        alternatives=report(
            out("fit/alternatives.tsv"),
            caption="report/alternatives.rst",
            category="NAM fit",
        ),
    log:
        out("logs/summarise_partition.log"),
    benchmark:
        out("benchmarks/summarise_partition.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        near_tie_nats=config["partition"]["near_tie_nats"],
        nam_version=NAM_VERSION,
    message:
        "Co-clustering of the individuals and the alternative partitions of the merge search"
    script:
        "../scripts/summarise_partition.py"


rule plot_composition_figures:
    input:
        posterior=out("composition/posterior.tsv"),
        differences=out("composition/differences.tsv"),
        propeller=out("composition/propeller.tsv"),
        names=out("cell_types/type_names.tsv"),
        coclustering=out("fit/coclustering.tsv"),
        individuals=out("individuals.tsv"),
    output:
        bars_png=report(
            out("figures/composition_posterior.png"),
            caption="report/composition_posterior.rst",
            category="Figures",
            labels={"figure": "Composition with credible intervals"},
        ),
        bars_pdf=out("figures/composition_posterior.pdf"),
        forest_png=report(
            out("figures/composition_differences.png"),
            caption="report/composition_differences.rst",
            category="Figures",
            labels={"figure": "Differences in composition (forest plot)"},
        ),
        forest_pdf=out("figures/composition_differences.pdf"),
        cocluster_png=report(
            out("figures/coclustering.png"),
            caption="report/coclustering.rst",
            category="Figures",
            labels={"figure": "Co-clustering of individuals"},
        ),
        cocluster_pdf=out("figures/coclustering.pdf"),
    log:
        out("logs/plot_composition_figures.log"),
    benchmark:
        out("benchmarks/plot_composition_figures.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        null_log_ratio=config["composition"]["null_log_ratio"],
        nam_version=NAM_VERSION,
    message:
        "Plotting the composition posterior, its differences and the co-clustering heatmap"
    script:
        "../scripts/plot_composition_figures.py"


rule plot_umap_cell_types:
    input:
        cells=out("cells.h5ad"),
        names=out("cell_types/names.tsv"),
        type_names=out("cell_types/type_names.tsv"),
    output:
        png=report(
            out("figures/umap_cell_types.png"),
            caption="report/umap_cell_types.rst",
            category="Figures",
            labels={"figure": "UMAP by cell type and by atom"},
        ),
        pdf=out("figures/umap_cell_types.pdf"),
    log:
        out("logs/plot_umap_cell_types.log"),
    benchmark:
        out("benchmarks/plot_umap_cell_types.tsv")
    # on the longest chain from the fit to the summary: runs first when cores are short
    priority: 10
    conda:
        "../envs/nam.yaml"
    resources:
        # obs and the UMAP only: 1.1 GB at 1.2M cells
        mem_mb=2000,
    params:
        nam_version=NAM_VERSION,
    message:
        "Plotting the UMAP labelled with the cell-type names"
    script:
        "../scripts/plot_umap_cell_types.py"


rule check_composition_demo:
    input:
        cells=out("cells.h5ad"),
        groups=out("composition/groups.tsv"),
        differences=out("composition/differences.tsv"),
        propeller=out("composition/propeller.tsv"),
        names=out("cell_types/type_names.tsv"),
        permutation=out("cell_types/marker_permutation.tsv"),
    output:
        evaluation=report(
            out("composition/demo_check.tsv"),
            caption="report/composition_demo_check.rst",
            category="Demo evaluation",
        ),
        detail=out("composition/demo_check_detail.tsv"),
    log:
        out("logs/check_composition_demo.log"),
    benchmark:
        out("benchmarks/check_composition_demo.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        min_true_effect=config["demo"]["min_true_effect"],
        nam_version=NAM_VERSION,
    message:
        "Scoring the composition analysis against the demo truth: {output.evaluation}"
    script:
        "../scripts/check_composition_demo.py"


rule fit_ablation:
    input:
        inputs=out("fit/inputs.npz"),
    output:
        fit=out("ablation/{model}.npz"),
    log:
        out("logs/fit_ablation/{model}.log"),
    benchmark:
        out("benchmarks/fit_ablation/{model}.tsv")
    conda:
        "../envs/nam.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, input: max(2000, 20 * input.size_mb),
    params:
        settings=get_fit_settings(),
        seed=config["fit"]["seeds"][0],
        nam_version=NAM_VERSION,
    message:
        "Ablation: fitting {wildcards.model} on NAM's inputs"
    script:
        "../scripts/fit_ablation.py"


rule compare_ablation:
    input:
        nam=out("fit/best.npz"),
        cam=out("ablation/cam.npz"),
        dpmix_y=out("ablation/dpmix_y.npz"),
        inputs=out("fit/inputs.npz"),
    output:
        comparison=report(
            out("ablation/comparison.tsv"),
            caption="report/ablation.rst",
            category="Ablation",
        ),
    log:
        out("logs/compare_ablation.log"),
    benchmark:
        out("benchmarks/compare_ablation.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        nam_version=NAM_VERSION,
    message:
        "Comparing NAM with CAM and the DP mixture on y: {output.comparison}"
    script:
        "../scripts/compare_ablation.py"
