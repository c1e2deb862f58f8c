from _common import logged, read_fit_inputs

from nam_core.engine.settings import FitSettings
from nam_core.models.coarse_to_fine import coarse_cells
from nam_core.models.registry import build_estimator
from nam_core.validation import describe_device


def fit(path_inputs, path_fit, seed: int, settings: dict, path_checkpoint=None):
    """One NAM restart (``n_init=1``) with ``seed``, saved to ``path_fit`` (.npz).

    With ``coarse_fraction`` set, the restart sees the coarse subsample of cells (the same for
    every seed). The restart checkpoints to ``path_checkpoint`` and resumes from it after a kill.
    """
    inputs = read_fit_inputs(path_inputs)
    settings = FitSettings.from_config(settings).with_changes(n_init=1)
    describe_device(settings.device)  # logs it; warns if a granted GPU is unusable
    model = build_estimator("nam", settings, seed=seed, verbose=True, checkpoint=path_checkpoint)
    y, group = coarse_cells(inputs.y, inputs.group, settings.coarse_fraction, settings.coarse_min_cells)
    model.fit(inputs.x, y, group).save(path_fit)
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
