rule check_donor_covariates:
    input:
        unpack(get_covariate_file),
        unpack(get_plink_files),
        counts=get_counts(),
        # after the first check of the inputs, so a damaged file stops the run with nothing else written
        matched=out("matching/individuals.tsv"),
    output:
        table=out("covariates/donors.tsv"),
    log:
        out("logs/check_donor_covariates.log"),
    benchmark:
        out("benchmarks/check_donor_covariates.tsv")
    # first after the input check: bad covariates stop the run before the long steps
    priority: 100
    conda:
        "../envs/nam.yaml"
    resources:
        # the .fam and two obs columns of the .h5ad
        mem_mb=1000,
    params:
        bfile=get_bfile(),
        covariates=config["inputs"].get("donor_covariates"),
        individual_column=get_individual_column(),
        settings=get_covariate_settings(),
        input_stamps=get_input_stamps("covariates"),
        nam_version=NAM_VERSION,
    message:
        "Checking the donor covariates against {input.fam} and {input.counts}"
    script:
        "../scripts/check_donor_covariates.py"
