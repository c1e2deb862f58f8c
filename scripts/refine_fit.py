from _common import load_fit, logged, read_fit_inputs

from nam_core.engine.settings import FitSettings
from nam_core.fit_jobs import refine_best, run_on_ranks


def refine(path_coarse, path_inputs, path_fit, settings: dict, path_checkpoint=None):
    """Refine the best coarse restart (``path_coarse``) on all cells; save it to ``path_fit``.

    With ``ranks`` above 1 the refinement runs over that many processes (no checkpoint).
    """
    inputs = read_fit_inputs(path_inputs)  # damaged files fail here, before any rank starts
    best = load_fit(path_coarse)
    settings = FitSettings.from_config(settings)
    if settings.ranks > 1:
        run_on_ranks("refine", settings, path_inputs, path_fit, coarse=path_coarse)
        return load_fit(path_fit)
    model = refine_best(best, inputs, settings, checkpoint=path_checkpoint)
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
