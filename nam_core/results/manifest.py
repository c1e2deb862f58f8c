"""``results/<cohort>/manifest.json``: what a run read and wrote, with which software.

The manifest records the nam, Snakemake, Python and key package versions; the configuration and
its SHA-256; each input file with its size and either its SHA-256 (up to
:data:`HASH_INPUTS_UP_TO` bytes) or its modification time; every file under the results folder
with its size and SHA-256; each step's run time and peak memory from ``benchmarks/``; and when the
run started (the earliest job start that the benchmarks record) and when the manifest was written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ..io import atomic_write_text, read_tsv

__all__ = ["HASH_INPUTS_UP_TO", "config_sha256", "file_sha256", "run_manifest", "write_manifest"]

logger = logging.getLogger(__name__)

#: Input files up to this size (bytes) are hashed; larger ones are recorded by size and mtime.
HASH_INPUTS_UP_TO = 256 * 2**20
#: Packages whose versions the manifest records (those absent are left out).
PACKAGES = ("snakemake", "torch", "numpy", "scipy", "pandas", "scanpy", "anndata",
            "scikit-learn", "matplotlib", "statsmodels")


def _utc(seconds: float) -> str:
    """A POSIX time as an ISO 8601 UTC timestamp to the second."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")


def file_sha256(path: str | Path, chunk: int = 2**22) -> str:
    """SHA-256 of the file ``path`` (hex), read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def config_sha256(config: dict) -> str:
    """SHA-256 of the configuration as canonical JSON (keys sorted): equal settings, equal hash."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _versions() -> dict[str, str]:
    """Versions of Python and of the :data:`PACKAGES` installed here."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _input_entry(name: str, path: str | Path) -> dict:
    """One input: its role, path, size and SHA-256 (small files) or modification time (large)."""
    path = Path(path)
    stat = path.stat()
    entry = {"name": name, "path": str(path), "bytes": stat.st_size}
    if stat.st_size <= HASH_INPUTS_UP_TO:
        entry["sha256"] = file_sha256(path)
    else:
        entry["modified"] = _utc(stat.st_mtime)
    return entry


def _steps(folder: Path) -> tuple[list[dict], float | None]:
    """Each benchmark's step, wall seconds and peak RSS (MB); and the earliest job start.

    A job's start is its benchmark file's modification time less its wall seconds.
    """
    steps, starts = [], []
    for path in sorted((folder / "benchmarks").rglob("*.tsv")):
        table = read_tsv(path)
        if table.empty or "s" not in table:
            continue
        seconds = float(table["s"].iloc[-1])
        steps.append({"step": str(path.relative_to(folder / "benchmarks").with_suffix("")),
                      "seconds": round(seconds, 2),
                      "max_rss_mb": round(float(table["max_rss"].iloc[-1]), 1)
                      if "max_rss" in table else None})
        starts.append(path.stat().st_mtime - seconds)
    return steps, (min(starts) if starts else None)


def run_manifest(folder: str | Path, config: dict, inputs: dict[str, str | list],
                 nam_version: str, exclude=()) -> dict:
    """The manifest of the run whose results are in ``folder`` (``results/<cohort>``).

    Parameters
    ----------
    folder : path
        The results folder; every file under it is listed with its size and SHA-256.
    config : dict
        The workflow configuration, recorded whole and hashed (:func:`config_sha256`).
    inputs : dict
        {role: path or list of paths} of the files the run read (genotypes, counts, ...).
    nam_version : str
        ``nam_core.__version__``.
    exclude : iterable of paths
        Files under ``folder`` to leave out (the manifest itself, this step's log and benchmark).
    """
    folder = Path(folder)
    skip = {Path(p).resolve() for p in exclude}
    outputs = [{"path": str(path.relative_to(folder)), "bytes": path.stat().st_size,
                "sha256": file_sha256(path)}
               for path in sorted(folder.rglob("*"))
               if path.is_file() and path.resolve() not in skip]
    files = [_input_entry(name, path) for name, paths in inputs.items()
             for path in ([paths] if isinstance(paths, str | Path) else paths)]
    steps, started = _steps(folder)
    return {
        "cohort": config.get("cohort"),
        "nam_version": nam_version,
        "versions": _versions(),
        "platform": platform.platform(),
        "started": None if started is None else _utc(started),
        "written": datetime.now(tz=timezone.utc).isoformat(timespec="seconds"),
        "config_sha256": config_sha256(config),
        "config": config,
        "inputs": files,
        "outputs": outputs,
        "steps": steps,
    }


def write_manifest(path: str | Path, manifest: dict) -> None:
    """Write ``manifest`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(manifest, indent=1, default=str) + "\n")
    logger.info("wrote %s: %d inputs, %d outputs, %d steps", path, len(manifest["inputs"]),
                len(manifest["outputs"]), len(manifest["steps"]))
