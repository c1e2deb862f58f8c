from _common import load_fit, logged, read_fit_inputs

from nam_core.engine.settings import FitSettings
from nam_core.models.coarse_to_fine import refine_on_all_cells
from nam_core.models.registry import build_estimator


def refine(path_coarse, path_inputs, path_fit, settings: dict, path_checkpoint=None):
    """Refine the best coarse restart (``path_coarse``) on all cells; save it to ``path_fit``."""
    inputs = read_fit_inputs(path_inputs)
    best = load_fit(path_coarse)
    settings = FitSettings.from_config(settings)
    params = build_estimator("nam", settings, verbose=True, checkpoint=path_checkpoint).get_params()
    model = refine_on_all_cells(best, inputs.x, inputs.y, inputs.group, **params)
    model.save(path_fit)
    return model


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        refine(
            path_coarse=snakemake.input.coarse,
            path_inputs=snakemake.input.inputs,
            path_fit=snakemake.output.fit,
            path_checkpoint=snakemake.params.checkpoint,
            settings=snakemake.params.settings,
        )
