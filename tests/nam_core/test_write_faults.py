"""Writes that fail (a full disk, a failed rename) name the file, leave nothing partial and no
temporary file, and a rerun succeeds: through the test hook of the one atomic writer, and once
with a real full tmpfs."""

import errno
import os
import subprocess
from pathlib import Path

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pytest

from nam_core import NAM, simulate
from nam_core.io import FAULT_ENV, atomic_path, inject_write_fault
from nam_core.results.figure_style import save_figure


@pytest.fixture(scope="module")
def data():
    return simulate(J=20, n_clusters=2, q=2, p=3, n_cell_types=3, mean_cells=20, delta_x=3.0,
                    delta_y=5.0, eta=0.8, seed=0)


def _nam(**kw):
    return NAM(K=4, L=4, n_init=2, seed=0, dtype="float64", device="cpu", verbose=False, **kw)


def _write_cells(folder: Path) -> Path:
    path = folder / "cells.h5ad"
    adata = ad.AnnData(X=np.arange(12.0).reshape(4, 3))
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
    return path


def _write_best(folder: Path, data) -> Path:
    return _nam().fit(data.X, data.Y, data.group).save(folder / "best.npz")


def _write_checkpoint(folder: Path, data) -> Path:
    path = folder / "checkpoints" / "seed0.npz"
    _nam(checkpoint=str(path), checkpoint_every=1).fit(data.X, data.Y, data.group)
    return folder / "fit_done"


def _write_figure(folder: Path) -> Path:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, folder / "figure.png", folder / "figure.pdf", dpi=50)
    return folder / "figure.png"


WRITES = {
    "cells.h5ad": lambda folder, data: _write_cells(folder),
    "best.npz": _write_best,
    "seed0.npz": _write_checkpoint,
    "figure.png": lambda folder, data: _write_figure(folder),
}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.is_file())


@pytest.mark.parametrize("stage", ["write", "replace"])
@pytest.mark.parametrize("name", list(WRITES))
def test_failed_write_names_file_leaves_nothing_and_rerun_succeeds(tmp_path, data, name, stage):
    with inject_write_fault(name, stage=stage), pytest.raises(OSError) as info:
        WRITES[name](tmp_path, data)
    err = info.value
    assert err.errno == errno.ENOSPC
    assert name in str(err) and "No space left on device" in str(err), str(err)
    assert not list(tmp_path.rglob(name)), "no partial file under its final name"
    assert _leftovers(tmp_path) == [], "no temporary file"
    made = WRITES[name](tmp_path, data)  # the rerun, space back
    if name != "seed0.npz":  # a checkpoint is removed once its fit completes
        assert made.exists() and made.stat().st_size > 0
    assert _leftovers(tmp_path) == []


def test_permission_error_names_the_folder(tmp_path):
    with inject_write_fault("x.tsv", error=errno.EACCES), pytest.raises(OSError) as info:
        with atomic_path(tmp_path / "x.tsv") as tmp:
            tmp.write_text("a\n")
    assert f"could not write {tmp_path / 'x.tsv'}" in str(info.value)
    assert f"make {tmp_path} writable" in str(info.value)


def test_fault_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "replace:*.png:EIO")
    with pytest.raises(OSError, match="could not write .*figure.png") as info:
        _write_figure(tmp_path)
    assert info.value.errno == errno.EIO and _leftovers(tmp_path) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_real_full_disk_during_an_h5ad_write(small_tmpfs):
    """A 256 KiB tmpfs fills during a 1 MB .h5ad write: named, nothing left; space back, rerun."""
    rng = np.random.default_rng(0)
    adata = ad.AnnData(X=rng.normal(size=(500, 250)))
    target = small_tmpfs / "cells.h5ad"
    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            adata.write_h5ad(tmp)
    assert "cells.h5ad" in str(info.value), str(info.value)
    assert os.listdir(small_tmpfs) == [], "neither a partial output nor a temporary file"
    small = ad.AnnData(X=rng.normal(size=(20, 10)))
    with atomic_path(target) as tmp:
        small.write_h5ad(tmp)
    assert ad.read_h5ad(target).shape == (20, 10)
