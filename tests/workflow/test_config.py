"""The config, its schema, the environment file and the profile; lint and dry runs (fast)."""

import dataclasses
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from nam_core.engine.settings import FitSettings

from .conftest import ROOT, SMALL_CONFIG, output_of, planned_jobs, snakemake

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
CONFIGS = [ROOT / "config/config.yaml", ROOT / "config/onek1k.yaml", SMALL_CONFIG,
           ROOT / "config/small_cohort.yaml"]


def walk(schema, path="config"):
    """(path, subschema) of every property, depth first."""
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}.{key}", sub
        yield from walk(sub, f"{path}.{key}")


def delegated(sub) -> bool:
    """A block validated by its own schema file (the simulation study)."""
    return "x-validated-by" in sub


def is_map(sub) -> bool:
    """A map from names the user chooses to checked values (e.g. covariate column -> type)."""
    return isinstance(sub.get("additionalProperties"), dict) and "properties" not in sub


def defaults(schema):
    return {key: (defaults(sub) if sub.get("type") == "object" and not delegated(sub)
                  and not is_map(sub) else sub["default"])
            for key, sub in schema["properties"].items()}


def test_schema_describes_every_key_with_a_default():
    assert SCHEMA["additionalProperties"] is False
    keys = list(walk(SCHEMA))
    assert len(keys) > 50, "walk finds the schema's keys"
    for path, sub in keys:
        assert sub.get("description"), f"{path} has no description"
        assert "default" in sub, f"{path} has no default"
        if delegated(sub):
            assert (ROOT / "workflow/schemas" / sub["x-validated-by"]).is_file(), path
        elif sub.get("type") == "object" and not is_map(sub):
            assert sub.get("additionalProperties") is False, path
        else:  # the default itself is valid
            jsonschema.Draft202012Validator(sub).validate(sub["default"])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_files_validate(path):
    jsonschema.Draft202012Validator(SCHEMA).validate(yaml.safe_load(path.read_text()))


def test_default_config_is_the_schema_defaults():
    """config/config.yaml spells out every default, so a partial config behaves like it."""
    assert yaml.safe_load((ROOT / "config/config.yaml").read_text()) == defaults(SCHEMA)


def test_fit_settings_defaults_are_the_schema_defaults():
    """The config schema is the one source of fit defaults; FitSettings carries the same values."""
    fit = SCHEMA["properties"]["fit"]["properties"]
    fields = {f.name: f.default for f in dataclasses.fields(FitSettings)}
    schema_defaults = {key: (tuple(sub["default"]) if isinstance(sub["default"], list) else sub["default"])
                       for key, sub in fit.items() if key != "seeds"}
    assert schema_defaults == {key: fields[key] for key in schema_defaults}
    assert set(fields) - set(schema_defaults) == {"n_init"}  # the workflow runs one restart per seed


def test_simulation_fit_defaults_say_why_they_differ():
    """Where the simulation study's fit defaults differ from the workflow's, the schema says why."""
    study = yaml.safe_load((ROOT / "workflow/schemas/simulation.schema.yaml").read_text())
    fit, workflow_fit = study["properties"]["fit"]["properties"], SCHEMA["properties"]["fit"]["properties"]
    differ = [key for key in fit if key in workflow_fit and fit[key]["default"] != workflow_fit[key]["default"]]
    assert differ, "the study and the workflow share every fit default: drop this test"
    for key in differ:
        assert "workflow" in fit[key]["description"], key


@pytest.mark.parametrize("path", CONFIGS[:2], ids=lambda p: p.name)
def test_every_key_is_commented(path):
    """Each key line sits in a paragraph (lines between blank lines) that holds a comment."""
    commented, keys = False, 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            commented = False
        elif stripped.startswith("#"):
            commented = True
        else:
            assert commented or "#" in line, f"{path.name}:{number}: {line!r} has no comment"
            keys += 1
    assert keys > 20, f"{path.name}: only {keys} key lines"


def test_env_file_pins_match_pyproject():
    env = yaml.safe_load((ROOT / "envs/nam.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(pip) == sorted(project["dependencies"])
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python == "python=3.11" and ">=3.11,<3.12" == project["requires-python"]


@pytest.mark.parametrize("name", ["slurm", "onek1k"])
def test_profiles_use_real_options_and_rules(name):
    from snakemake.cli import get_argument_parser

    profile = yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())
    options = {opt for action in get_argument_parser()._actions for opt in action.option_strings}
    assert profile and options, name
    for key in profile:
        assert f"--{key}" in options, f"profiles/{name}: {key} is not a snakemake option"
    rules = set(re.findall(r"^\s*rule (\w+):", "".join(
        p.read_text() for p in (ROOT / "workflow").glob("*.smk")), flags=re.M))
    assert set(profile.get("set-resources", {})) <= rules
    assert set(profile.get("set-threads", {})) <= rules
    for rule, resources in profile.get("set-resources", {}).items():
        assert "gpu" not in resources, f"{rule}: a GPU request fails on clusters without GPUs"
    for value in profile.get("default-resources", {}).values():
        assert " " not in str(value), f"profiles/{name}: {value!r} would split at the space"


def test_slurm_profile_works_without_accounting_and_account():
    """squeue for job status (sacct hangs without slurmdbd); no account unless one is set."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"
    assert profile["slurm-no-account"] is True
    assert "slurm_account" not in profile["default-resources"]
    assert "set-resources" not in profile and "set-threads" not in profile  # sizes: onek1k


def test_lint():
    proc = snakemake(ROOT, "--lint")
    assert proc.returncode == 0, output_of(proc)


def test_dry_run_default(tmp_path):
    proc = snakemake(tmp_path, "-n", "--cores", 2, "--configfile", ROOT / "config/config.yaml")
    assert proc.returncode == 0, output_of(proc)
    jobs = planned_jobs(proc)
    assert jobs["fit_nam"] == 4
    assert jobs["make_demo_cohort"] == 1 and jobs["evaluate_demo"] == 1
    assert jobs["cluster_cells_leiden"] == 1
    # 11 of them: composition.smk, 1 Leiden, 1 covariate check, 1 summary and manifest,
    # 2 donor_distance.smk
    assert sum(jobs.values()) == 38 and jobs["summarise_run"] == 1
    assert jobs["check_donor_covariates"] == 1 and jobs["compare_donor_distances"] == 1
    assert jobs["check_composition_demo"] == 1 and "fit_ablation" not in jobs
    assert not (tmp_path / "results").exists()


def test_dry_run_with_the_ablation(tmp_path):
    config = write_config(tmp_path, SMALL_CONFIG, ablation__enabled=True)
    proc = snakemake(tmp_path, "-n", "--cores", 2, "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    jobs = planned_jobs(proc)
    assert jobs["fit_ablation"] == 2 and jobs["compare_ablation"] == 1
    assert "results/small/ablation/dpmix_y.npz" in output_of(proc)


def write_config(tmp_path, base: Path, **changes) -> Path:
    config = yaml.safe_load(base.read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_dry_run_onek1k_with_placeholder_files(tmp_path):
    data = tmp_path / "data" / "onek1k"
    data.mkdir(parents=True)
    for name in ("genotypes.bed", "genotypes.bim", "genotypes.fam", "counts.h5ad"):
        (data / name).write_bytes(b"")
    config = write_config(tmp_path, ROOT / "config/onek1k.yaml",
                          inputs__bfile=str(data / "genotypes"),
                          inputs__counts=str(data / "counts.h5ad"))
    proc = snakemake(tmp_path, "-n", "--cores", 2, "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    jobs = planned_jobs(proc)
    assert jobs["fit_nam"] == 10
    assert "make_demo_cohort" not in jobs and "evaluate_demo" not in jobs
    assert "results/onek1k/fit/restarts/seed9.npz" in output_of(proc)


def test_dry_run_small_cohort_template_with_placeholder_files(tmp_path):
    """config/small_cohort.yaml, with only its input paths changed, plans a run of 5 restarts."""
    data = tmp_path / "data" / "my_cohort"
    data.mkdir(parents=True)
    for name in ("genotypes.bed", "genotypes.bim", "genotypes.fam", "counts.h5ad"):
        (data / name).write_bytes(b"")
    config = write_config(tmp_path, ROOT / "config/small_cohort.yaml",
                          inputs__bfile=str(data / "genotypes"),
                          inputs__counts=str(data / "counts.h5ad"))
    proc = snakemake(tmp_path, "-n", "--cores", 2, "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    jobs = planned_jobs(proc)
    assert jobs["fit_nam"] == 5 and "make_demo_cohort" not in jobs
    assert "results/my_cohort/fit/restarts/seed4.npz" in output_of(proc)


def test_main_snakefile_plans_the_simulation_study_on_request(tmp_path):
    proc = snakemake(tmp_path, "simulation_all", "-n", "--cores", 2, "--configfile",
                     ROOT / "config/config.yaml", ROOT / "config/simulation.yaml")
    assert proc.returncode == 0, output_of(proc)
    jobs = planned_jobs(proc)
    assert jobs["simulate_and_fit"] == 3 * 3 * 7  # scenarios x replicates x methods
    assert jobs["aggregate_simulation"] == 1 and "fit_nam" not in jobs


def test_misspelt_key_fails_before_any_job(tmp_path):
    config = write_config(tmp_path, SMALL_CONFIG, fit__seeds=[0], fit__n_restarts=3)
    proc = snakemake(tmp_path, "--cores", 2, "--configfile", config)
    assert proc.returncode != 0
    assert "n_restarts" in output_of(proc) and "Additional properties" in output_of(proc)
    assert not (tmp_path / "results").exists()


def test_wrong_type_fails_before_any_job(tmp_path):
    config = write_config(tmp_path, SMALL_CONFIG, expression__n_pcs="five")
    proc = snakemake(tmp_path, "-n", "--configfile", config)
    assert proc.returncode != 0 and "'five' is not of type 'integer'" in output_of(proc)


def test_cohort_without_inputs_fails_with_a_message(tmp_path):
    config = write_config(tmp_path, SMALL_CONFIG, demo__enabled=False)
    proc = snakemake(tmp_path, "-n", "--configfile", config)
    assert proc.returncode != 0
    assert "inputs.bfile and inputs.counts is not set" in output_of(proc)


def test_config_readme_describes_every_config_file():
    readme = (ROOT / "config/README.md").read_text()
    files = [p.relative_to(ROOT) for p in sorted((ROOT / "config").glob("*.yaml"))]
    files += [p.relative_to(ROOT) for p in sorted((ROOT / ".test").rglob("*.yaml"))]
    assert len(files) >= 6
    for path in files:
        assert f"`{path}`" in readme, f"config/README.md does not describe {path}"


def test_workflow_catalog_metadata():
    meta = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert meta["mandatory-flags"]["desc"] and meta["mandatory-flags"]["flags"]
    assert meta["software-stack-deployment"]["conda"] is True and meta["report"] is True


def test_onek1k_profile_stacks_on_the_slurm_profile(monkeypatch):
    """`--profile profiles/slurm --profile profiles/onek1k`: the cluster settings and the sizes."""
    from snakemake.cli import parse_args

    monkeypatch.chdir(ROOT)
    _, args = parse_args(["--profile", "profiles/slurm", "--profile", "profiles/onek1k", "-n"])
    assert args.executor == "slurm" and args.slurm_status_command == "squeue"
    assert args.slurm_no_account is True and "runtime" in args.default_resources
    assert args.set_resources["preprocess_expression"]["mem_mb"].value == 4000
    assert args.set_resources["refine_fit"]["mem_mb"].value == 8000
    assert args.set_threads["fit_nam"].value == 4


def test_missing_configfile_says_to_pass_one(tmp_path):
    """No --configfile and no config/config.yaml in the working directory: named, with the fix."""
    proc = snakemake(tmp_path, "-n", "--cores", 1)
    assert proc.returncode != 0
    text = output_of(proc)
    assert f"config file {tmp_path}/config/config.yaml does not exist" in text, text[-2000:]
    assert "pass --configfile" in text


def test_tab_in_default_config_names_file_and_line(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text("cohort: small\ndemo:\n\tenabled: true\n")
    proc = snakemake(tmp_path, "-n", "--cores", 1)
    text = output_of(proc)
    assert proc.returncode != 0
    assert "config/config.yaml is not valid YAML at line 3" in text and "tab" in text, text[-2000:]
