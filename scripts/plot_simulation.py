import pandas as pd
from _common import logged  # sets MPLBACKEND=Agg before nam_core.study.simplots imports pyplot

from nam_core.study import simplots


def read_metrics(path_metrics) -> pd.DataFrame:
    """The tidy metrics table; scenario, method and level stay strings."""
    return pd.read_csv(path_metrics, sep="\t", dtype={"scenario": str, "method": str, "level": str})


def plot_simulation(path_metrics, kind: str, path_png, path_pdf, **kw) -> None:
    """One figure of the study: ``kind`` "boxes" (kw: scenario), "sweep" (kw: sweep) or "runtime"."""
    metrics = read_metrics(path_metrics)
    if kind == "boxes":
        simplots.plot_boxes(metrics, kw["scenario"], path_png, path_pdf,
                            title=f"Scenario {kw['scenario']}: {kw.get('description', '')}")
    elif kind == "sweep":
        sweep = kw["sweep"]
        simplots.plot_sweep(metrics, sweep["parameter"], [tuple(p) for p in sweep["points"]],
                            path_png, path_pdf,
                            title=f"ARI against {sweep['parameter']} (base scenario {sweep['base']})")
    elif kind == "runtime":
        simplots.plot_runtime(metrics, path_png, path_pdf)
    else:
        raise ValueError(f"unknown figure kind {kind!r}")


if "snakemake" in globals():
    snakemake = globals()["snakemake"]  # injected by the script directive; named for linters
    with logged(snakemake.log[0]):
        params = dict(snakemake.params.items())
        plot_simulation(snakemake.input.metrics, params.pop("kind"), snakemake.output.png,
                        snakemake.output.pdf, **params)
