rule compare_donor_distances:
    input:
        fit=out("fit/best.npz"),
        inputs=out("fit/inputs.npz"),
        groups=out("composition/groups.tsv"),
        cell_types=out("cell_types/groups.tsv"),
        pcs=out("genotypes/pcs.tsv"),
        donors=out("covariates/donors.tsv"),
    output:
        mantel=report(
            out("composition/mantel.tsv"),
            caption="report/mantel.rst",
            category="Composition",
        ),
        pairs=out("composition/donor_pairs.tsv.gz"),
        png=report(
            out("figures/composition_vs_genetic_distance.png"),
            caption="report/composition_vs_genetic_distance.rst",
            category="Figures",
            labels={"figure": "Composition distance against genetic distance"},
        ),
        pdf=out("figures/composition_vs_genetic_distance.pdf"),
    log:
        out("logs/compare_donor_distances.log"),
    benchmark:
        out("benchmarks/compare_donor_distances.tsv")
    conda:
        "../envs/nam.yaml"
    resources:
        # the fit inputs, one pass of q(M), and two J x J distance matrices
        mem_mb=lambda wildcards, input: max(2000, 4 * input.size_mb),
    params:
        pool_column=config["expression"].get("batch_key") or "pool",
        settings=config["donor_distance"],
        nam_version=NAM_VERSION,
    message:
        "Mantel tests of donor composition distance against genetic distance ({params.settings[n_permutations]} permutations)"
    script:
        "../scripts/compare_donor_distances.py"


rule permute_composition_groups:
    input:
        fit=out("fit/best.npz"),
        inputs=out("fit/inputs.npz"),
        groups=out("composition/groups.tsv"),
        cell_types=out("cell_types/groups.tsv"),
        type_names=out("cell_types/type_names.tsv"),
        donors=out("covariates/donors.tsv"),
    output:
        table=report(
            out("composition/propeller_permutation.tsv"),
            caption="report/propeller_permutation.rst",
            category="Composition",
        ),
    log:
        out("logs/permute_composition_groups.log"),
    benchmark:
        out("benchmarks/permute_composition_groups.tsv")
    conda:
        "../envs/nam.yaml"
    resources:
        # the fit inputs (y of every cell) and one pass of q(M): as summarise_composition
        mem_mb=lambda wildcards, input: max(2000, 4 * input.size_mb),
    params:
        pool_column=config["expression"].get("batch_key") or "pool",
        settings=get_composition_permutation_settings(),
        nam_version=NAM_VERSION,
    message:
        "Permutation ANOVA of each cell type's share across genotype-only groups, labels relabelled within pools"
    script:
        "../scripts/permute_composition_groups.py"
