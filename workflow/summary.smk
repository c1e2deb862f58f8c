rule summarise_run:
    input:
        # everything else the all target asks for: the summary is written last
        unpack(get_data_inputs),
        results=get_final_outputs(),
        donors=out("covariates/donors.tsv"),
    output:
        summary=report(
            out("summary.md"),
            caption="report/summary.rst",
            category="Summary",
        ),
        manifest=out("manifest.json"),
    log:
        out("logs/summarise_run.log"),
    benchmark:
        out("benchmarks/summarise_run.tsv")
    conda:
        "../envs/nam.yaml"
    params:
        config=config,
        data_inputs=get_data_inputs(),
        benchmark=out("benchmarks/summarise_run.tsv"),
        nam_version=NAM_VERSION,
    message:
        "Writing the findings summary {output.summary} and the run manifest {output.manifest}"
    script:
        "../scripts/summarise_run.py"
