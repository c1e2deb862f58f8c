from _common import logged, read_fit_inputs

from nam_core.results.ablation import ablation_model


def fit(path_inputs, path_fit, name: str, settings: dict, seed: int):
    """CAM or the DP mixture on y, on NAM's inputs (one restart), saved to ``path_fit``."""
    inputs = read_fit_inputs(path_inputs)
    model = ablation_model(name, settings, seed).fit(inputs.x, inputs.y, inputs.group)
    model.save(path_fit)
    return model


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        fit(snakemake.input.inputs, snakemake.output.fit, snakemake.wildcards.model,
            snakemake.params.settings, snakemake.params.seed)
