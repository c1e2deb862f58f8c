import logging

import pandas as pd
from _common import load_fit, logged, write_tsv

from nam_core import NAM, select_best


def select(paths_fits, path_best, path_restarts, path_traces) -> NAM:
    """Keep the restart with the largest ELBO; tabulate every restart and its ELBO trace."""
    fits = {str(p): load_fit(p) for p in paths_fits}  # each read once, damage named
    model, best_path = select_best(paths_fits, load=lambda p: fits[str(p)])
    logging.getLogger(__name__).info(
        "kept %s (seed %d, ELBO %.10g) of %d restarts", best_path, model.seed_, model.elbo_,
        len(paths_fits),
    )
    model.save(path_best)
    restarts = pd.DataFrame(model.restarts_).drop(columns="sweep_seconds", errors="ignore")
    restarts["kept"] = restarts["seed"] == model.seed_
    restarts["fit"] = [str(p) for p in paths_fits]
    traces = pd.concat(trace_table(m) for m in fits.values())
    write_tsv(restarts, path_restarts)
    write_tsv(traces, path_traces)
    return model


def trace_table(model: NAM) -> pd.DataFrame:
    """One row per sweep of the kept restart: seed, sweep, ELBO and seconds (when recorded)."""
    table = pd.DataFrame({"seed": model.seed_, "sweep": range(1, model.n_iter_ + 1), "elbo": model.elbo_trace_})
    kept = [r for r in model.restarts_ if r["seed"] == model.seed_]
    seconds = kept[0].get("sweep_seconds", []) if kept else []
    if len(seconds) == len(table):
        table["seconds"] = seconds
    return table


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0], snakemake.params.producers):
        select(
            list(snakemake.input.fits),
            snakemake.output.best,
            snakemake.output.restarts,
            snakemake.output.traces,
        )
