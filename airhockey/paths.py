"""Checking output paths before long work starts: the one place that says where a command cannot write."""

from __future__ import annotations

import os
from pathlib import Path

from airhockey.errors import UserError


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (or ``path`` itself) that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_creatable(path: Path, what: str) -> None:
    """Checks that ``path`` could be created: its nearest existing ancestor is a writable directory."""
    ancestor = _existing_ancestor(path.parent)
    if not ancestor.is_dir():
        raise UserError(f"{path}: cannot create the {what}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot create the {what}: no permission to write in {ancestor}")


def check_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Checks that ``path`` is a directory this process can write into, or can create.

    Args:
        path: the directory.
        what: what the directory is, for the message.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        UserError: one line naming the path, when it is a file, or lies under a file, or in a
            place this process may not write.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{path}: the {what} exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{path}: no permission to write in the {what}")
    else:
        _check_creatable(path, what)
    return path


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Checks that ``path`` can be written as a file (created, or replaced where it is a file).

    Raises:
        UserError: one line naming the path, when it is a directory, lies under a file, or in a
            place this process may not write.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: the {what} is an existing directory; name a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{path}: no permission to replace the {what}")
    _check_creatable(path, what)
    return path
