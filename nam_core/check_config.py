"""Check config files as the workflow reads them, naming the file, the line and the key at fault.

Snakemake reads a ``--configfile`` before the workflow starts, and its message for a file that
is not valid YAML ("Config file is not valid JSON or YAML ...") names neither the file nor the
line. This command does::

    python -m nam_core.check_config config/mine.yaml

Each file is read as YAML (:func:`nam_core.io.read_yaml_config`: the line, the column and a
hint when a tab is the cause), laid over the workflow's ``config/config.yaml`` as Snakemake lays
it, and checked against ``workflow/schemas/config.schema.yaml``. Exit status 0 when every file
is good, 1 otherwise (the messages on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import NAMInputError
from .io import read_yaml_config

__all__ = ["check_config", "main"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = ROOT / "config" / "config.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _overlay(base: dict, update: dict) -> dict:
    """``base`` with ``update`` laid over it, nested mappings merged (as Snakemake does)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _overlay(merged[key], value)
        else:
            merged[key] = value
    return merged


def check_config(path: str | os.PathLike, defaults: str | os.PathLike | None = DEFAULTS,
                 schema: str | os.PathLike = SCHEMA) -> dict:
    """The config the workflow would run with ``--configfile path``; a named error otherwise.

    Parameters
    ----------
    path : str or path
        A config file.
    defaults : str or path or None
        The workflow's own config, read first (None: ``path`` alone).
    schema : str or path
        The JSON schema of the config (YAML).

    Raises
    ------
    NAMInputError
        The file is missing, not valid YAML (line, column, tab hint), or breaks the schema
        (the key and the rule).
    """
    import jsonschema
    import yaml

    config = read_yaml_config(path)
    if defaults is not None:
        config = _overlay(read_yaml_config(defaults), config)
    rules = yaml.safe_load(Path(schema).read_text())
    try:
        jsonschema.validate(config, rules)
    except jsonschema.ValidationError as err:
        where = ".".join(map(str, err.absolute_path)) or "(top level)"
        raise NAMInputError(f"config file {path}: {where}: {err.message}") from err
    return config


def main(argv: list[str] | None = None) -> int:
    """Check each file named on the command line; print one line per file."""
    parser = argparse.ArgumentParser(prog="python -m nam_core.check_config",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("configfiles", nargs="+", help="config files given to --configfile")
    status = 0
    for path in parser.parse_args(argv).configfiles:
        try:
            check_config(path)
        except NAMInputError as err:
            print(f"ERROR: {err}", file=sys.stderr)
            status = 1
        else:
            print(f"{path}: valid")
    return status


if __name__ == "__main__":
    sys.exit(main())
