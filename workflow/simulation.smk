# The simulation study (docs/model.md section 10): NAM against every baseline on simulated
# cohorts. Runs on its own, or included by the main Snakefile:
#   snakemake -s workflow/simulation.smk --configfile config/simulation.yaml --cores 2
#   snakemake simulation_all --configfile config/simulation.yaml --cores 2   (main Snakefile)
# The study is the `simulation` block of the config; all logic lives in nam_core.study.
include: "simulation_common.smk"


localrules:
    simulation_all,


rule simulation_all:
    input:
        get_simulation_outputs,


rule simulate_and_fit:
    output:
        json="results/simulation/runs/{scenario}/{replicate}/{method}.json",
    log:
        "results/simulation/logs/simulate_and_fit/{scenario}/{replicate}/{method}.log",
    benchmark:
        "results/simulation/benchmarks/simulate_and_fit/{scenario}/{replicate}/{method}.tsv"
    wildcard_constraints:
        scenario=SIMULATION_NAME,
        replicate=r"\d+",
        method=r"[a-z0-9_.]+",
    conda:
        "../envs/nam.yaml"
    threads: 1
    resources:
        mem_mb=get_simulation_mem_mb,
    params:
        spec=get_simulation_spec,
        nam_version=SIMULATION_VERSION,
    message:
        "Simulating scenario {wildcards.scenario}, replicate {wildcards.replicate}, "
        "and fitting {wildcards.method}"
    script:
        "../scripts/simulate_and_fit.py"


rule aggregate_simulation:
    input:
        runs=get_simulation_runs(),
    output:
        metrics="results/simulation/metrics.tsv",
        summary=report(
            "results/simulation/summary.tsv",
            caption="report/simulation_summary.rst",
            category="Simulation study",
            labels={"table": "Median and IQR of ARI and NMI"},
        ),
        checks=report(
            "results/simulation/checks.tsv",
            caption="report/simulation_checks.rst",
            category="Simulation study",
            labels={"table": "Checks"},
        ),
    log:
        "results/simulation/logs/aggregate_simulation.log",
    conda:
        "../envs/nam.yaml"
    params:
        checks=SIMULATION["checks"],
        nam_version=SIMULATION_VERSION,
    message:
        "Collecting every run into the metrics table, its summary and the checks"
    script:
        "../scripts/aggregate_simulation.py"


rule plot_simulation_ari:
    input:
        metrics="results/simulation/metrics.tsv",
    output:
        png=report(
            "results/simulation/figures/ari_{scenario}.png",
            caption="report/simulation_ari.rst",
            category="Simulation study",
            subcategory="ARI by scenario",
            labels={"scenario": "{scenario}"},
        ),
        pdf="results/simulation/figures/ari_{scenario}.pdf",
    log:
        "results/simulation/logs/plot_simulation_ari/{scenario}.log",
    wildcard_constraints:
        scenario=SIMULATION_NAME,
    conda:
        "../envs/nam.yaml"
    params:
        kind="boxes",
        scenario="{scenario}",
        description=lambda wildcards: SIMULATION_SCENARIOS[wildcards.scenario][
            "description"
        ],
        replicates=lambda wildcards: SIMULATION_SCENARIOS[wildcards.scenario][
            "replicates"
        ],
        settings=get_simulation_settings,
        nam_version=SIMULATION_VERSION,
    message:
        "Plotting ARI by method in scenario {wildcards.scenario}"
    script:
        "../scripts/plot_simulation.py"


rule plot_simulation_sweep:
    input:
        metrics="results/simulation/metrics.tsv",
    output:
        png=report(
            "results/simulation/figures/sweep_{sweep}.png",
            caption="report/simulation_sweep.rst",
            category="Simulation study",
            subcategory="Sweeps",
            labels={"sweep": "{sweep}"},
        ),
        pdf="results/simulation/figures/sweep_{sweep}.pdf",
    log:
        "results/simulation/logs/plot_simulation_sweep/{sweep}.log",
    wildcard_constraints:
        sweep=SIMULATION_NAME,
    conda:
        "../envs/nam.yaml"
    params:
        kind="sweep",
        sweep=get_sweep,
        settings=get_sweep_settings,
        nam_version=SIMULATION_VERSION,
    message:
        "Plotting ARI against the swept parameter of sweep {wildcards.sweep}"
    script:
        "../scripts/plot_simulation.py"


rule plot_simulation_runtime:
    input:
        metrics="results/simulation/metrics.tsv",
    output:
        png=report(
            "results/simulation/figures/runtime_vs_cells.png",
            caption="report/simulation_runtime.rst",
            category="Simulation study",
            labels={"figure": "Run time against cells"},
        ),
        pdf="results/simulation/figures/runtime_vs_cells.pdf",
    log:
        "results/simulation/logs/plot_simulation_runtime.log",
    conda:
        "../envs/nam.yaml"
    params:
        kind="runtime",
        fit=SIMULATION["fit"],
        nam_version=SIMULATION_VERSION,
    message:
        "Plotting fit time against cells for every method"
    script:
        "../scripts/plot_simulation.py"
