from _common import load_fit, logged, read_fit_inputs

from nam_core.engine.settings import FitSettings
from nam_core.fit_jobs import fit_restart, run_on_ranks
from nam_core.validation import describe_device


def fit(path_inputs, path_fit, seed: int, settings: dict, path_checkpoint=None):
    """One NAM restart (``n_init=1``) with ``seed``, saved to ``path_fit`` (.npz).

    With ``coarse_fraction`` set, the restart sees the coarse subsample of cells (the same for
    every seed). The restart checkpoints to ``path_checkpoint`` and resumes from it after a kill;
    with ``ranks`` above 1 it runs over that many processes instead (no checkpoint).
    """
    inputs = read_fit_inputs(path_inputs)  # a damaged file fails here, before any rank starts
    settings = FitSettings.from_config(settings)
    describe_device(settings.device)  # logs it; warns if a granted GPU is unusable
    if settings.ranks > 1:
        run_on_ranks("restart", settings, path_inputs, path_fit, seed=seed)
        return load_fit(path_fit)
    model = fit_restart(inputs, settings, seed, checkpoint=path_checkpoint)
    model.save(path_fit)
    return model


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        fit(
            path_inputs=snakemake.input.inputs,
            path_fit=snakemake.output.fit,
            path_checkpoint=snakemake.params.checkpoint,
            seed=int(snakemake.wildcards.seed),
            settings=snakemake.params.settings,
        )
