# Functions and settings of the simulation study (workflow/simulation.smk): the `simulation`
# block of the config, validated, and the input functions of its rules.
import sys
from pathlib import Path

from snakemake.utils import validate

# nam_core from this checkout, installed or not (its dependencies must be importable here)
sys.path.insert(0, str(Path(workflow.current_basedir).parent))
import nam_core
from nam_core.study import design

# Without a `simulation` block (the main workflow's own config), the schema's defaults: scenario
# A of the design; nothing runs unless simulation_all (or one of its files) is asked for.
config.setdefault("simulation", {})
validate(config["simulation"], schema="schemas/simulation.schema.yaml")

SIMULATION = config["simulation"]
SIMULATION_SCENARIOS = design.expand_scenarios(SIMULATION)
SIMULATION_SWEEPS = design.sweeps(SIMULATION)
SIMULATION_JOBS = design.jobs(SIMULATION)


def get_simulation_spec(wildcards):
    """Scenario, replicate, seed, method and every parameter of one job."""
    return design.job_spec(
        SIMULATION, wildcards.scenario, int(wildcards.replicate), wildcards.method
    )


def get_simulation_mem_mb(wildcards):
    """Memory of one job: 1.5 GB plus 4 kB per expected cell."""
    params = SIMULATION_SCENARIOS[wildcards.scenario]["params"]
    return int(1500 + 0.004 * params["J"] * params["mean_cells"])


def get_simulation_runs(wildcards=None):
    """The JSON of every (scenario, replicate, method) of the study."""
    scenarios, replicates, methods = zip(*SIMULATION_JOBS)
    return expand(
        rules.simulate_and_fit.output.json,
        zip,
        scenario=scenarios,
        replicate=replicates,
        method=methods,
    )


def get_simulation_settings(wildcards):
    """Generative and fit settings of a scenario, for its figure caption."""
    scen = SIMULATION_SCENARIOS[wildcards.scenario]
    return design.describe_settings(scen["params"], SIMULATION["fit"])


def get_sweep(wildcards):
    """Parameter and points of a sweep."""
    return SIMULATION_SWEEPS[wildcards.sweep]


def get_sweep_settings(wildcards):
    """Settings of a sweep's base scenario, the swept parameter left out."""
    sweep = SIMULATION_SWEEPS[wildcards.sweep]
    base = SIMULATION_SCENARIOS[sweep["base"]]["params"]
    return design.describe_settings(base, SIMULATION["fit"], skip=[sweep["parameter"]])


def get_simulation_outputs(wildcards):
    """The tables and every figure of the study (PNG and PDF)."""
    tables = rules.aggregate_simulation.output
    outputs = [tables.metrics, tables.summary, tables.checks]
    for plot_rule, wildcard, names in (
        (rules.plot_simulation_ari, "scenario", design.named_scenarios(SIMULATION)),
        (rules.plot_simulation_sweep, "sweep", list(SIMULATION_SWEEPS)),
    ):
        for pattern in (plot_rule.output.png, plot_rule.output.pdf):
            outputs += expand(pattern, **{wildcard: names})
    outputs += [rules.plot_simulation_runtime.output.png]
    outputs += [rules.plot_simulation_runtime.output.pdf]
    return outputs


# a param of the simulation rules, so that a new version of nam_core reruns the study
SIMULATION_VERSION = nam_core.__version__
# scenario and sweep names (as in the schema)
SIMULATION_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
