"""False calls of the composition analysis when compositions do not differ.

For each seed, draws a cohort from ``nam_core.simulate`` with genotype clusters but identical
cell-type proportions in every cluster (eta = 0), individual compositions scattered around them
as in the demo (omega_j ~ Dirichlet(100 omega*)), fits one NAM restart and runs
:func:`nam_core.results.composition.composition_tables` on the fit. Every test is then a null:
the posterior differences (Bayesian FDR), the propeller-style tests and the genotype
regression. Prints one JSON line per seed and a summary line with the share of tests called at
FDR < 0.05 (``<test>_call_rate``; every call is false at eta = 0) and the number of seeds with
any call. With ``--eta`` above 0 the ancestries' proportions differ (``simulate``'s composition
distinctness) and the call rates show the power instead; ``<test>_true_called`` scores it
against the truth as the demo check does: of the (contrast, cell cluster with at least 1% of
the cells) whose true difference in share between the compared groups is at least 0.05, how
many are called.

With ``--level types`` the tests are per cell type, as the workflow reports them: NAM's atoms
are grouped by :func:`nam_core.results.cell_types.group_atoms` (its default criterion) on the
fit's own cell labels, and a type's share is the sum of its atoms'.

The tests compare genotype-only groups and cohort cell labels (``composition_tables`` with the
fit inputs), as the workflow does. ``--fits-dir`` keeps each seed's fit, so a second run with
another test setting skips the fits.

Pools and covariates. ``--n-pools`` assigns the donors to sequencing pools
(:func:`nam_core.synthetic.pools.assign_pools`, ``--pool-confounding`` of them in their
genotype cluster's own pools; 0: independent) and moves every cell of a pool by the pool's
shift, a normal vector of sd ``--pool-shift`` per dimension of y (within-type sd 1): a technical
effect on expression, none on composition. ``--harmony`` corrects y for the pool before the fit
(:func:`nam_core.inputs.batch.correct_pcs`, Harmony alone: the simulated cells have no library
size). ``--covariates`` gives every donor an age (uniform 20-80) and a sex, unrelated to
composition, and the tests adjust for them (``--adjust-pool`` adds the pool as a categorical
covariate); the null still holds for every test.

Example (20 seeds, as in the README)::

    OMP_NUM_THREADS=1 python benchmarks/composition_null.py --seeds 20
    OMP_NUM_THREADS=1 python benchmarks/composition_null.py --seeds 20 --level types

With 24 pools, Harmony and covariates (docs/pools.md)::

    OMP_NUM_THREADS=1 python benchmarks/composition_null.py --seeds 20 --n-pools 24 \\
        --pool-shift 1.0 --harmony --covariates
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from nam_core import NAM, simulate
from nam_core.inputs.batch import BatchSettings, correct_pcs
from nam_core.results.cell_types import group_atoms
from nam_core.results.checks import DEFAULT_MIN_SHARE, DEFAULT_TRUE_EFFECT, true_differences
from nam_core.results.composition import cohort_cell_labels, composition_tables
from nam_core.synthetic.pools import assign_pools

GENERATOR = dict(J=200, n_clusters=3, q=5, p=10, n_cell_types=6, mean_cells=100, delta_x=3.0,
                 delta_y=4.0, eta=0.0, kappa=100.0)


def counts_table(model, group: np.ndarray, J: int) -> pd.DataFrame:
    """cells_per_individual.tsv of the fit: individual, cluster, cells per cell cluster."""
    L = int(model.cell_labels_.max()) + 1
    counts = np.zeros((J, L), dtype=np.int64)
    np.add.at(counts, (group, model.cell_labels_), 1)
    occupied = np.unique(model.cell_labels_)
    table = pd.DataFrame(counts[:, occupied], columns=[f"C{l + 1}" for l in occupied])
    table.insert(0, "cluster", [f"I{k + 1}" for k in model.individual_labels_])
    table.insert(0, "individual", [f"IND{j}" for j in range(J)])
    return table


#: No pools, no correction, no covariates: the cohorts and tests of the original null check.
NO_POOLS = SimpleNamespace(n_pools=0, pool_shift=0.0, pool_confounding=0.0, harmony=False,
                           covariates=False, adjust_pool=False)


def with_pools(data, seed: int, options) -> tuple[np.ndarray, np.ndarray | None]:
    """y with each pool's shift added (and Harmony-corrected with ``options.harmony``).

    Returns
    -------
    (y (N, p), pool (J,) of int or None): the cells' y the fit sees and each donor's pool.
    """
    if not options.n_pools:
        return data.Y, None
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(19,)))
    pool = assign_pools(data.individual_labels, options.n_pools, options.pool_confounding, rng)
    shift = rng.normal(0.0, options.pool_shift, size=(options.n_pools, data.Y.shape[1]))
    y = data.Y + shift[pool[data.group]]
    if options.harmony:
        y, _ = correct_pcs(y, pool[data.group], None, BatchSettings(regress_library=False,
                                                                     seed=seed))
    return y, pool


def donor_covariates(J: int, seed: int, pool: np.ndarray | None, options):
    """Age and sex of each donor (unrelated to everything else), and the pool when asked.

    Returns
    -------
    (table, types) for ``composition_tables``, or (None, None) without ``options.covariates``.
    """
    if not options.covariates and not options.adjust_pool:
        return None, None
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(20,)))
    table = pd.DataFrame({"individual": [f"IND{j}" for j in range(J)]})
    types = {}
    if options.covariates:
        table["age"] = rng.integers(20, 81, J).astype(np.float64)
        table["sex"] = rng.choice(["female", "male"], J)
        types |= {"age": "numeric", "sex": "categorical"}
    if options.adjust_pool and pool is not None:
        table["pool"] = [f"P{p}" for p in pool]
        types["pool"] = "categorical"
    return table, types


def fitted(seed: int, fits_dir: Path | None, eta: float = 0.0, options=NO_POOLS):
    """The cohort of one seed, the y the fit saw, the donors' pools and the NAM fit.

    The fit is read from ``fits_dir`` when saved there before (its name holds the pool settings).
    """
    data = simulate(seed=seed, **(GENERATOR | {"eta": eta}))
    y, pool = with_pools(data, seed, options)
    tag = "" if not options.n_pools else (
        f"_pools{options.n_pools}_shift{options.pool_shift:g}_conf{options.pool_confounding:g}"
        f"{'_harmony' if options.harmony else ''}")
    path = None if fits_dir is None else fits_dir / f"eta{eta:g}{tag}_seed{seed}.npz"
    t0 = time.perf_counter()
    if path is not None and path.exists():
        model = NAM.load(path)
    else:
        model = NAM(K=10, L=20, n_init=1, seed=seed, device="cpu", verbose=False).fit(
            data.X, y, data.group)
        if path is not None:
            model.save(path)
    return data, y, pool, model, time.perf_counter() - t0


def atom_groups(model, Y) -> dict[str, str]:
    """Atom (``C<l>``) -> cell type (``T<g>``) of the fit's own labels, as the workflow groups."""
    atoms = np.array([f"C{l + 1}" for l in model.cell_labels_])
    return group_atoms(Y, atoms, seed=0).atom_to_group


def one_seed(seed: int, n_draws: int, fits_dir: Path | None = None, eta: float = 0.0,
             level: str = "atoms", options=NO_POOLS) -> dict:
    data, y, pool, model, seconds = fitted(seed, fits_dir, eta, options)
    atom_to_group = atom_groups(model, y) if level == "types" else None
    J = data.X.shape[0]
    pcs = pd.DataFrame(data.X, columns=[f"PC{i + 1}" for i in range(data.X.shape[1])])
    pcs.insert(0, "individual", [f"IND{j}" for j in range(J)])
    inputs = SimpleNamespace(x=data.X, y=y, group=data.group,
                             individuals=pcs["individual"].to_numpy())
    covariates, types = donor_covariates(J, seed, pool, options)
    adjusted = {} if covariates is None else {"covariates": covariates, "covariate_types": types}
    tables = composition_tables(model, counts_table(model, data.group, J), pcs, n_draws=n_draws,
                                seed=seed, inputs=inputs, atom_to_group=atom_to_group,
                                **adjusted)
    genotype = tables["genotype"][tables["genotype"]["term"] == "all"]
    row = {"seed": seed, "fit_seconds": round(seconds, 1),
           "n_individual_clusters": int(model.n_individual_clusters_),
           "n_cell_clusters": int(model.n_cell_clusters_),
           "n_cell_types": len(set(atom_to_group.values())) if atom_to_group else None}
    if pool is not None:
        row["individual_clusters_vs_pool_ari"] = round(float(adjusted_rand_score(
            pool, model.individual_labels_)), 3)
    for name, table in (("bayes", tables["differences"]), ("propeller", tables["propeller"]),
                        ("genotype", genotype)):
        row[f"{name}_tests"] = int(len(table))
        row[f"{name}_calls"] = int(table["called"].sum()) if len(table) else 0
    # the truth of the compared groups and cells: true cell types' shares, as the demo check
    labels = cohort_cell_labels(model, y, data.group)
    obs = pd.DataFrame({"individual": inputs.individuals[data.group],
                        "cell_type": data.cell_labels.astype(str),
                        "nam_cell_cluster": [f"C{l + 1}" for l in labels]})
    if atom_to_group is not None:
        obs["nam_cell_cluster"] = obs["nam_cell_cluster"].map(atom_to_group)
    truth = true_differences(obs, tables["groups"][["individual", "cluster"]])
    share = obs["nam_cell_cluster"].value_counts(normalize=True)
    truth = truth[(truth["cell_cluster"].map(share) >= DEFAULT_MIN_SHARE)
                  & (truth["true_effect"].abs() >= DEFAULT_TRUE_EFFECT)]
    row["n_true_differences"] = len(truth)
    for name, table in (("bayes", tables["differences"]), ("propeller", tables["propeller"])):
        called = set(map(tuple, table.loc[table["called"], ["contrast", "cell_cluster"]].to_numpy()))
        row[f"{name}_true_called"] = sum((c, l) in called for c, l in
                                         truth[["contrast", "cell_cluster"]].to_numpy())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--n-draws", type=int, default=4000)
    parser.add_argument("--fits-dir", type=Path, default=None,
                        help="save each seed's fit here and reuse it on the next run")
    parser.add_argument("--eta", type=float, default=0.0,
                        help="composition distinctness of the ancestries (0: the null)")
    parser.add_argument("--level", choices=["atoms", "types"], default="atoms",
                        help="test per NAM atom or per cell type (atoms grouped as the workflow does)")
    parser.add_argument("--n-pools", type=int, default=0, help="sequencing pools (0: none)")
    parser.add_argument("--pool-shift", type=float, default=1.0,
                        help="sd of each pool's shift of y, per dimension")
    parser.add_argument("--pool-confounding", type=float, default=0.0,
                        help="share of donors in their genotype cluster's own pools")
    parser.add_argument("--harmony", action="store_true", help="Harmony on y before the fit")
    parser.add_argument("--covariates", action="store_true",
                        help="donor age and sex, adjusted for by every test")
    parser.add_argument("--adjust-pool", action="store_true",
                        help="adjust the tests for the pool too (categorical)")
    args = parser.parse_args()
    if args.fits_dir is not None:
        args.fits_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rows.append(one_seed(seed, args.n_draws, args.fits_dir, args.eta, args.level, args))
        print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    summary = {"seeds": len(df), "level": args.level, "generator": GENERATOR | {"eta": args.eta},
               "pools": {k: getattr(args, k) for k in vars(NO_POOLS)}}
    if "individual_clusters_vs_pool_ari" in df:
        summary["max_individual_clusters_vs_pool_ari"] = float(
            df["individual_clusters_vs_pool_ari"].max())
    for name in ("bayes", "propeller", "genotype"):
        tests, calls = int(df[f"{name}_tests"].sum()), int(df[f"{name}_calls"].sum())
        summary[f"{name}_call_rate"] = round(calls / tests, 4) if tests else None
        summary[f"{name}_calls"] = calls
        summary[f"{name}_tests"] = tests
        summary[f"{name}_seeds_with_a_call"] = int((df[f"{name}_calls"] > 0).sum())
        if name != "genotype":
            summary[f"{name}_true_called"] = int(df[f"{name}_true_called"].sum())
    summary["n_true_differences"] = int(df["n_true_differences"].sum())
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
