"""Input files readable and the results folder writable, checked before any job runs.

Standard library only, so the workflow can import it at parse time without importing torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import NAMInputError

__all__ = ["unwritable_folders", "check_writable", "unreadable_inputs", "check_readable"]


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (where a new folder would be created)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def unwritable_folders(folder: str | os.PathLike) -> list[Path]:
    """Folders a run writing into ``folder`` cannot write: none when the run can go ahead.

    When ``folder`` does not exist yet, its closest existing ancestor must be writable (the run
    creates it there); when it exists, it and every folder below it must be. ``os.access``
    tells a read-only file system, an immutable folder (``chattr +i``) and missing permissions
    apart from a writable folder; nothing is created.

    Parameters
    ----------
    folder : str or path
        The results folder of a run (``results/<cohort>``).

    Returns
    -------
    list of Path
        The folders that cannot be written, top first.
    """
    top = _nearest_existing(Path(folder))
    candidates = [top]
    if top == Path(folder).absolute() and top.is_dir():
        candidates += [Path(root) / name for root, dirs, _ in os.walk(top) for name in dirs]
    return [path for path in candidates
            if path.is_dir() and not os.access(path, os.W_OK | os.X_OK)]


def check_writable(folder: str | os.PathLike) -> None:
    """Raise :class:`NAMInputError` naming the folders of ``folder`` that cannot be written.

    Raises
    ------
    NAMInputError
        With the first folders, and what to do: make them writable, or run elsewhere.
    """
    bad = unwritable_folders(folder)
    if not bad:
        return
    shown = ", ".join(str(path) for path in bad[:5]) + (", ..." if len(bad) > 5 else "")
    read_only = any(os.statvfs(path).f_flag & os.ST_RDONLY for path in bad[:5])
    raise NAMInputError(
        f"the results folder {folder} cannot be written: {len(bad)} folder"
        f"{'s' if len(bad) != 1 else ''} not writable ({shown})"
        + ("; it is on a read-only file system" if read_only else "")
        + ": make it writable (permissions, chattr -i, a read-write mount) or run from a "
        "working directory where results/ can be written; no job was started"
    )


def unreadable_inputs(paths: dict[str, str | os.PathLike]) -> dict[str, Path]:
    """The inputs of ``paths`` ({config key: path}) that exist but cannot be read.

    A file needs read permission and every folder above it search permission; ``os.access``
    checks both for the user running the workflow. Missing files are left to the checks that
    say which key names them.
    """
    bad = {}
    for key, path in paths.items():
        path = Path(path)
        try:
            exists = path.exists()
        except PermissionError:  # a folder above it cannot be searched
            exists = True
        if exists and not os.access(path, os.R_OK):
            bad[key] = path
    return bad


def check_readable(paths: dict[str, str | os.PathLike]) -> None:
    """Raise :class:`NAMInputError` naming each input of ``paths`` that cannot be read.

    Raises
    ------
    NAMInputError
        With the config key and path of each, and what to do.
    """
    bad = unreadable_inputs(paths)
    if not bad:
        return
    listed = "; ".join(f"{key}: {path}" for key, path in bad.items())
    raise NAMInputError(
        f"{len(bad)} input file{'s' if len(bad) != 1 else ''} cannot be read by user "
        f"{_user()} ({listed}): give read permission to the file and search permission to "
        "the folders above it (chmod), or copy it where you can read it; no job was started"
    )


def _user() -> str:
    """The name of the user running this process (its uid when it has none)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())
