import numpy as np
from _common import logged

from nam_core import NAM
from nam_core.validation import describe_device


def fit(path_inputs, path_fit, seed: int, settings: dict) -> NAM:
    """One NAM restart (``n_init=1``) with ``seed``, saved to ``path_fit`` (.npz)."""
    with np.load(path_inputs, allow_pickle=False) as data:
        x, y, group = data["x"], data["y"], data["group"]
    describe_device(settings.get("device", "auto"))  # logs it; warns if a granted GPU is unusable
    model = NAM(n_init=1, seed=seed, verbose=True, **settings).fit(x, y, group)
    model.save(path_fit)
    return model


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        fit(
            snakemake.input.inputs,
            snakemake.output.fit,
            int(snakemake.wildcards.seed),
            snakemake.params.settings,
        )
