"""The case-file command runs exactly n_iter float64 sweeps from given responsibilities."""

import subprocess
import sys

import numpy as np
import pytest

from nam_core import NAM
from nam_core.case import run_case

from ..helpers import small_data


def _case(use_x=True, alpha=np.nan, beta=0.8, trunc=("tsb", "open")):
    d = small_data(seed=2, J=10)
    rng = np.random.default_rng(0)
    K, L = 3, 4
    case = {
        "X": d.X, "Y": d.Y, "g": d.group,
        "xi0": rng.dirichlet(np.ones(L), size=d.Y.shape[0]), "rho0": rng.dirichlet(np.ones(K), size=10),
        "n_iter": np.array(7), "use_x": np.array(use_x), "trunc_v": np.array(trunc[0]),
        "trunc_u": np.array(trunc[1]), "alpha": np.array(alpha), "beta": np.array(beta),
        "s": np.array([1.0, 2.0]), "r": np.array([2.0, 1.0]),
    }
    for layer, Z in (("x", d.X), ("y", d.Y)):
        case |= {f"mu0_{layer}": Z.mean(0), f"lam0_{layer}": np.array(0.5),
                 f"nu0_{layer}": np.array(Z.shape[1] + 1.0), f"Psi0_inv_{layer}": np.cov(Z.T)}
    return case


def test_case_command_writes_results(tmp_path):
    case = _case()
    np.savez(tmp_path / "in.npz", **case)
    out = tmp_path / "out.npz"
    proc = subprocess.run([sys.executable, "-m", "nam_core.case", str(tmp_path / "in.npz"), str(out)],
                          capture_output=True, text=True, check=True)
    assert "7 sweeps" in proc.stdout
    with np.load(out) as f:
        trace, rho, xi = f["elbo_trace"], f["rho"], f["xi"]
        assert np.array_equal(f["Y"], case["Y"])
    assert trace.shape == (7,) and np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))
    assert rho.shape == (10, 3) and np.allclose(rho.sum(1), 1)
    assert xi.shape == case["xi0"].shape and np.allclose(xi.sum(1), 1)


@pytest.mark.parametrize("use_x", [True, False])
def test_case_equals_estimator_with_same_settings(use_x):
    case = _case(use_x=use_x, alpha=1.5, beta=np.nan, trunc=("open", "tsb"))
    result = run_case(case)
    model = NAM(
        K=3, L=4, n_init=1, seed=0, max_iter=7, tol=0, init="resp", init_resp=(case["xi0"], case["rho0"]),
        device="cpu", dtype="float64", alpha=1.5, beta=None, s=(1.0, 2.0), r=(2.0, 1.0),
        trunc_v="open", trunc_u="tsb", use_x=use_x, verbose=False,
        prior_x={"mean": case["mu0_x"], "mean_precision": 0.5, "dof": 3.0, "scale_inv": case["Psi0_inv_x"]},
        prior_y={"mean": case["mu0_y"], "mean_precision": 0.5, "dof": 4.0, "scale_inv": case["Psi0_inv_y"]},
    )
    with pytest.warns(UserWarning, match="did not converge"):
        model.fit(case["X"], case["Y"], case["g"])
    np.testing.assert_allclose(result["elbo_trace"], model.elbo_trace_, rtol=1e-12)
    np.testing.assert_allclose(result["rho"], model._state["rho"], rtol=1e-9, atol=1e-12)


def test_case_missing_field_is_named(tmp_path):
    case = _case()
    del case["Psi0_inv_y"]
    np.savez(tmp_path / "in.npz", **case)
    proc = subprocess.run([sys.executable, "-m", "nam_core.case", str(tmp_path / "in.npz"),
                           str(tmp_path / "out.npz")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Psi0_inv_y" in proc.stderr
    assert not (tmp_path / "out.npz").exists()
