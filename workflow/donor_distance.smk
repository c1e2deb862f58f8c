rule compare_donor_distances:
    input:
        counts=out("composition/cells_per_individual.tsv"),
        groups=out("cell_types/groups.tsv"),
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
        # two J x J distance matrices: 0.1 GB at 1,000 donors
        mem_mb=2000,
    params:
        pool_column=config["expression"].get("batch_key") or "pool",
        settings=config["donor_distance"],
        nam_version=NAM_VERSION,
    message:
        "Mantel tests of donor composition distance against genetic distance ({params.settings[n_permutations]} permutations)"
    script:
        "../scripts/compare_donor_distances.py"
