rule match_individuals:
    input:
        unpack(get_plink_files),
        counts=get_counts(),
    output:
        table=out("matching/individuals.tsv"),
    log:
        out("logs/match_individuals.log"),
    benchmark:
        out("benchmarks/match_individuals.tsv")
    conda:
        "../envs/nam.yaml"
    resources:
        # streams the counts a block at a time: 0.9 GB at 1.2M cells
        mem_mb=2000,
    params:
        bfile=get_bfile(),
        individual_column=get_individual_column(),
        counts_layer=get_counts_layer(),
        batch_key=config["expression"].get("batch_key"),
        individuals_without_cells=config["matching"]["individuals_without_cells"],
        cells_without_genotype=config["matching"]["cells_without_genotype"],
        max_lost_fraction=config["matching"]["max_lost_fraction"],
        n_pcs=config["genotypes"]["n_pcs"],
        chunk_snps=config["genotypes"]["chunk_snps"],
        snp_filters={
            "min_maf": config["genotypes"]["min_maf"],
            "max_missing": config["genotypes"]["max_missing"],
        },
        input_stamps=get_input_stamps("bed", "bim", "fam", "counts"),
        nam_version=NAM_VERSION,
    message:
        "Checking {input.bed} and {input.counts} and matching their individuals"
    script:
        "../scripts/match_individuals.py"


rule compute_genotype_pcs:
    input:
        unpack(get_plink_files),
        matching=out("matching/individuals.tsv"),
    output:
        pcs=out("genotypes/pcs.tsv"),
        eigenvalues=out("genotypes/eigenvalues.tsv"),
    log:
        out("logs/compute_genotype_pcs.log"),
    benchmark:
        out("benchmarks/compute_genotype_pcs.tsv")
    conda:
        "../envs/nam.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        bfile=get_bfile(),
        n_pcs=config["genotypes"]["n_pcs"],
        min_maf=config["genotypes"]["min_maf"],
        max_missing=config["genotypes"]["max_missing"],
        chunk_snps=config["genotypes"]["chunk_snps"],
        nam_version=NAM_VERSION,
    message:
        "Computing {params.n_pcs} genotype PCs of {input.bed}"
    script:
        "../scripts/compute_genotype_pcs.py"
