rule make_demo_cohort:
    output:
        bed=out("demo_cohort/genotypes.bed"),
        bim=out("demo_cohort/genotypes.bim"),
        fam=out("demo_cohort/genotypes.fam"),
        counts=out("demo_cohort/counts.h5ad"),
        truth_individuals=out("demo_cohort/truth_individuals.tsv"),
        truth_cells=out("demo_cohort/truth_cells.tsv"),
        known_markers=out("demo_cohort/known_markers.tsv"),
    log:
        out("logs/make_demo_cohort.log"),
    benchmark:
        out("benchmarks/make_demo_cohort.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        settings=get_demo_settings(),
        nam_version=NAM_VERSION,
    message:
        "Writing the demo cohort ({params.settings[n_individuals]} individuals) to {output.counts}"
    script:
        "../scripts/make_demo_cohort.py"


rule evaluate_demo:
    input:
        individuals=out("individuals.tsv"),
        individual_groups=out("individual_groups/individuals.tsv"),
        cells=out("cells.h5ad"),
        markers=out("markers.tsv"),
        truth_individuals=out("demo_cohort/truth_individuals.tsv"),
        truth_cells=out("demo_cohort/truth_cells.tsv"),
        known_markers=out("demo_cohort/known_markers.tsv"),
        leiden=out("expression/leiden.tsv"),
    output:
        evaluation=report(
            out("evaluation.tsv"),
            caption="report/evaluation.rst",
            category="Demo evaluation",
        ),
        marker_recovery=report(
            out("marker_recovery.tsv"),
            caption="report/marker_recovery.rst",
            category="Demo evaluation",
        ),
    log:
        out("logs/evaluate_demo.log"),
    benchmark:
        out("benchmarks/evaluate_demo.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        producers=get_producers,
        min_ari_individuals=config["demo"]["min_ari_individuals"],
        min_ari_cells=config["demo"]["min_ari_cells"],
        min_known_markers=config["demo"]["min_known_markers"],
        nam_version=NAM_VERSION,
    message:
        "Scoring the NAM clusters against the demo truth: {output.evaluation}"
    script:
        "../scripts/evaluate_demo.py"
