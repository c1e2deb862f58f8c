"""Case files: run exactly ``n_iter`` float64 CPU sweeps from given responsibilities.

Usage::

    python -m nam_core.case INPUT.npz OUTPUT.npz

INPUT holds ``X`` (J, q), ``Y`` (N, p), ``g`` (N,), ``xi0`` (N, L), ``rho0`` (J, K), ``n_iter``,
``use_x``, ``trunc_v``, ``trunc_u``, ``alpha``, ``beta`` (NaN when random), ``s``, ``r`` and
the priors ``mu0_x``, ``lam0_x``, ``nu0_x``, ``Psi0_inv_x`` and the same with ``_y``
(``docs/model.md``, verification). OUTPUT holds the inputs plus ``elbo_trace`` (one value per
sweep, after the global step), ``rho`` and ``xi`` after the last sweep. No early stopping.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import sys
from pathlib import Path

import numpy as np

from .errors import NAMInputError
from .io import atomic_path
from .models.nam import NAM

__all__ = ["run_case", "main"]

REQUIRED = ("Y", "g", "xi0", "rho0", "n_iter", "use_x", "trunc_v", "trunc_u", "alpha", "beta",
            "s", "r", "mu0_y", "lam0_y", "nu0_y", "Psi0_inv_y")
X_FIELDS = ("X", "mu0_x", "lam0_x", "nu0_x", "Psi0_inv_x")


def _scalar(arr) -> object:
    return np.asarray(arr).reshape(-1)[0].item() if np.asarray(arr).size else None


def _concentration(value) -> float | None:
    v = float(_scalar(value))
    return None if math.isnan(v) else v


def _prior(case: dict, layer: str) -> dict:
    return {
        "mean": np.asarray(case[f"mu0_{layer}"], dtype=np.float64),
        "mean_precision": float(_scalar(case[f"lam0_{layer}"])),
        "dof": float(_scalar(case[f"nu0_{layer}"])),
        "scale_inv": np.asarray(case[f"Psi0_inv_{layer}"], dtype=np.float64),
    }


def run_case(case: dict) -> dict:
    """Run a case (dict of arrays as in the module docstring); returns the inputs plus results."""
    use_x = bool(_scalar(case.get("use_x", True)))
    missing = [k for k in REQUIRED + (X_FIELDS if use_x else ()) if k not in case]
    if missing:
        raise NAMInputError(f"case file lacks the fields {missing}")
    xi0, rho0 = np.asarray(case["xi0"]), np.asarray(case["rho0"])
    n_iter = int(_scalar(case["n_iter"]))
    model = NAM(
        K=rho0.shape[1], L=xi0.shape[1], n_init=1, max_iter=n_iter, init="resp",
        init_resp=(xi0, rho0), seed=0, device="cpu", dtype="float64",
        alpha=_concentration(case["alpha"]), beta=_concentration(case["beta"]),
        s=tuple(np.asarray(case["s"], float)), r=tuple(np.asarray(case["r"], float)),
        trunc_v=str(_scalar(case["trunc_v"])), trunc_u=str(_scalar(case["trunc_u"])),
        prior_x=_prior(case, "x") if use_x else None, prior_y=_prior(case, "y"), use_x=use_x,
        quad="direct", verbose=False,
    )
    X = case.get("X") if use_x else None
    run, data = model.initialised_run(X, case["Y"], case["g"], seed=0)
    trace = []
    for it in range(n_iter):
        run.keep_xi = it == n_iter - 1
        trace.append(run.sweep())
    xi = np.empty_like(xi0, dtype=np.float64)
    xi[data.order.numpy()] = run.xi.numpy()
    return dict(case) | {"elbo_trace": np.asarray(trace), "rho": run.rho.numpy(), "xi": xi}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: read INPUT.npz, run it, write OUTPUT.npz atomically."""
    parser = argparse.ArgumentParser(
        prog="python -m nam_core.case",
        description=__doc__.split("\n\n")[0],
        epilog="Runs on the CPU in float64 with no early stopping, so two implementations given "
        "the same case file can be compared sweep by sweep.",
    )
    parser.add_argument(
        "input",
        type=Path,
        help="case file (.npz) with X (J, q), Y (N, p), g (N,), xi0 (N, L), rho0 (J, K), n_iter, "
        "use_x, trunc_v, trunc_u, alpha, beta (NaN when random), s, r and the priors mu0_x, "
        "lam0_x, nu0_x, Psi0_inv_x and the same with _y",
    )
    parser.add_argument(
        "output",
        type=Path,
        help="result (.npz, written atomically): the inputs plus elbo_trace (one value per "
        "sweep), rho (J, K) and xi (N, L) after the last sweep",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.input.exists():
        parser.error(f"no case file at {args.input}")
    with np.load(args.input, allow_pickle=False) as f:
        case = {k: f[k] for k in f.files}
    try:
        result = run_case(case)
    except NAMInputError as exc:
        print(f"error in {args.input}: {exc}", file=sys.stderr)
        return 2
    with atomic_path(args.output, suffix=".npz") as tmp:
        buf = io.BytesIO()
        np.savez(buf, **result)
        tmp.write_bytes(buf.getvalue())
    trace = result["elbo_trace"]
    print(f"{args.output}: {trace.size} sweeps, final ELBO {trace[-1]:.12g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
