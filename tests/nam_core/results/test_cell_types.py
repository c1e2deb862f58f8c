"""Cell types as groups of NAM's atoms: separated blobs split in two are joined back."""

import numpy as np
import pytest

from nam_core.errors import NAMInputError
from nam_core.io import write_tsv
from nam_core.results.cell_types import TABLE_COLUMNS, TABLE_MISSING, group_atoms


def _blobs(sizes=(900, 600, 300), seed=0):
    """Three far-apart Gaussian types in 5 PCs, each cut in half along a within-type axis."""
    rng = np.random.default_rng(seed)
    xs, atoms, types = [], [], []
    for t, n in enumerate(sizes):
        x = rng.normal(size=(n, 5))
        x[:, 0] += 12.0 * t
        x[:, 1] += 12.0 * (t % 2)
        xs.append(x)
        atoms.append(np.where(x[:, 2] > 0, f"C{2 * t + 1}", f"C{2 * t + 2}"))
        types.append(np.full(n, t))
    return np.vstack(xs), np.concatenate(atoms), np.concatenate(types)


@pytest.mark.parametrize("criterion", ["dip", "entropy"])
def test_split_types_joined_and_distinct_types_kept(criterion):
    pcs, atoms, types = _blobs()
    ct = group_atoms(pcs, atoms, criterion=criterion)
    groups = ct.cell_groups(atoms)
    assert len(set(groups)) == 3
    for t in range(3):  # each true type is one group, and the groups differ
        assert len(set(groups[types == t])) == 1
    # numbered by size: the largest type is T1
    assert set(groups[types == 0]) == {"T1"}
    assert set(groups[types == 1]) == {"T2"}
    assert set(groups[types == 2]) == {"T3"}


def test_deterministic_and_table_columns():
    pcs, atoms, _ = _blobs()
    a = group_atoms(pcs, atoms, max_cells=1000, seed=3)
    b = group_atoms(pcs, atoms, max_cells=1000, seed=3)
    assert a.atom_to_group == b.atom_to_group
    assert a.table.equals(b.table)
    assert list(a.table.columns) == TABLE_COLUMNS
    assert sorted(a.table["atom"]) == sorted(set(atoms))
    assert a.table["n_cells"].sum() == len(atoms)
    assert (a.table["joined_with"] != "").all()


def test_tiny_atom_joins_the_type_of_the_nearest_atom(tmp_path):
    pcs, atoms, types = _blobs()
    atoms = atoms.astype(object)
    tiny = np.flatnonzero(types == 1)[:3]  # three cells of the second type, in an atom of their own
    atoms[tiny] = "C99"
    ct = group_atoms(pcs, atoms)
    row = ct.table.set_index("atom").loc["C99"]
    assert row["statistic"] == "too_few_cells"
    assert row["joined_with"] in {"C3", "C4"}
    assert np.isnan(row["threshold"])
    means = {a: pcs[atoms == a].mean(0) for a in ("C99", row["joined_with"])}
    assert row["value"] == pytest.approx(np.linalg.norm(means["C99"] - means[row["joined_with"]]))
    assert ct.atom_to_group["C99"] == ct.atom_to_group["C3"] == "T2"
    assert len(set(ct.atom_to_group.values())) == 3
    write_tsv(ct.table, tmp_path / "groups.tsv", missing=TABLE_MISSING)  # its empty threshold is allowed
    assert (tmp_path / "groups.tsv").exists()


def test_subsample_keeps_enough_cells_of_a_rare_atom():
    pcs, atoms, types = _blobs()
    atoms = atoms.astype(object)
    rare = np.flatnonzero(types == 2)[:40]  # a far-apart atom of 40 cells in 1,800
    atoms[rare] = "C50"
    pcs = pcs.copy()
    pcs[rare] += 40.0
    ct = group_atoms(pcs, atoms, max_cells=200, seed=1)  # expects ~4 of its cells by chance
    row = ct.table.set_index("atom").loc["C50"]
    assert row["statistic"] != "too_few_cells"
    assert ct.atom_to_group["C50"] not in {ct.atom_to_group[a] for a in set(atoms) - {"C50"}}


def test_bad_input():
    pcs, atoms, _ = _blobs()
    with pytest.raises(NAMInputError, match="atom_labels has"):
        group_atoms(pcs, atoms[:-1])
    with pytest.raises(NAMInputError, match="criterion"):
        group_atoms(pcs, atoms, criterion="nope")
    with pytest.raises(NAMInputError, match="not in the grouping"):
        group_atoms(pcs, atoms).cell_groups(["C1", "X"])


def test_many_types_generator():
    from nam_core.synthetic.many_types import CLOSE_PAIRS, many_types_cells

    a = many_types_cells(n_cells=2000, seed=1)
    b = many_types_cells(n_cells=2000, seed=1)
    assert (a.counts != b.counts).nnz == 0
    types, counts = np.unique(a.cell_type, return_counts=True)
    assert len(types) >= 10 and counts.min() >= 0.02 * 2000
    assert min(a.dispersion.values()) == pytest.approx(2.0)
    assert max(a.dispersion.values()) == pytest.approx(20.0)
    assert all(t in types for pair in CLOSE_PAIRS for t in pair)
    assert a.counts.shape == (2000, len(a.genes))
