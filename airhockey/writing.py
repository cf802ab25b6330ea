"""The one way the package writes files: never through a link it did not make, atomically, and with
a full disk reported as such.

Every writer goes through these functions:

- ``atomic_file`` / ``write_atomic``: a whole file (JSON, checkpoints, shards, plots) written into a
  temporary file beside its target, then renamed over it. The temporary file is created anew with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` (whatever stood at its name, a link included, is removed first,
  never followed), and the rename replaces the target's directory entry, so a link planted at the
  target is replaced rather than written through.
- ``open_append``: logs that grow a line at a time (``log.csv``, ``runs.jsonl``); opened with
  ``O_APPEND | O_NOFOLLOW``, so a link planted at the log's name is refused.
- ``open_lock``: lock files, opened with ``O_NOFOLLOW``; a planted link is refused.
- ``fresh_temp``: a temporary file for a library that opens files by name (HDF5), made as above.

An ``OSError`` of a full disk or an exceeded quota (``ENOSPC``, ``EDQUOT``), raised directly or
underneath another library's error (torch wraps it in a ``RuntimeError``), becomes a one-line
``UserError`` naming the file; the temporary file is removed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from airhockey.errors import UserError

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
"""The errno values of a full disk or an exceeded quota."""
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded", "errno = 28", "errno = 122")
"""How HDF5 reports them inside its own messages (its ``OSError`` carries no errno)."""


def tmp_path(path: str | Path) -> Path:
    """The temporary file that ``atomic_file`` writes ``path`` through: ``<name>.tmp`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


def refuse_link(path: str | Path, what: str = "file") -> None:
    """Raises a one-line ``UserError`` when ``path`` is a symbolic link.

    Raises:
        UserError: naming the link and where it points, saying to remove it.
    """
    path = Path(path)
    if path.is_symlink():
        raise UserError(
            f"{path}: the {what} is a symbolic link (to {os.readlink(path)}); this program never writes "
            "through a link it did not make: remove the link and run again"
        )


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` or an error it was raised from is a full disk or an exceeded quota."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and (
            current.errno in DISK_FULL or any(text in str(current) for text in _DISK_FULL_TEXT)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full_error(path: str | Path) -> UserError:
    """The one-line error of a write to ``path`` that found the disk full."""
    return UserError(
        f"{path}: the disk is full (no space left on device or quota exceeded): free space and run again"
    )


@contextmanager
def disk_errors(path: str | Path, *cleanup: Path) -> Iterator[None]:
    """Turns a full disk inside the block into ``disk_full_error(path)``, removing ``cleanup`` files
    (never following a link) whatever the error."""
    try:
        yield
    except BaseException as error:
        for leftover in cleanup:
            _remove(leftover)
        if isinstance(error, Exception) and is_disk_full(error):
            raise disk_full_error(path) from None
        raise


def fresh_temp(tmp: str | Path) -> Path:
    """Makes ``tmp`` a new empty file of this process: whatever stood at its name (a leftover, or a
    link planted there) is removed without being followed, then the file is created with
    ``O_CREAT | O_EXCL | O_NOFOLLOW``.

    Raises:
        UserError: when ``tmp`` is a directory, or another process created it in between.
    """
    tmp = Path(tmp)
    if tmp.is_dir() and not tmp.is_symlink():
        raise UserError(f"{tmp}: a directory stands where this program writes a temporary file: remove it")
    _remove(tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    except FileExistsError:
        raise UserError(f"{tmp}: another process is writing this file at the same time") from None
    os.close(fd)
    return tmp


@contextmanager
def atomic_file(
    path: str | Path, mode: str = "wb", *, tmp: Path | None = None, durable: bool = False
) -> Iterator[IO[Any]]:
    """A file object on a new temporary file that becomes ``path`` when the block ends without error.

    Args:
        path: the file to write; a link standing there is replaced, never followed.
        mode: ``"wb"`` or ``"w"`` (text, with ``newline=""`` so CSV writers control line ends).
        tmp: the temporary file (default ``tmp_path(path)``); it must lie in ``path``'s folder.
        durable: fsync the file and its folder, so that the new contents survive a power cut.

    Raises:
        UserError: the disk is full (the temporary file is removed, ``path`` is left as it was),
            or the temporary name is taken by a directory.
    """
    path = Path(path)
    tmp = tmp_path(path) if tmp is None else tmp
    with disk_errors(path, tmp):
        fresh_temp(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            yield f  # a writer may close ``f`` itself (stable-baselines3 does)
        commit(tmp, path, durable=durable)


def commit(tmp: Path, path: Path, *, durable: bool = False) -> None:
    """Renames the finished temporary file ``tmp`` over ``path`` (a link at ``path`` is replaced,
    not followed); with ``durable``, fsyncs the file first and the folder after."""
    if durable:
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, path)
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def write_atomic(
    path: str | Path, data: bytes | str, *, tmp: Path | None = None, durable: bool = False
) -> Path:
    """Writes ``data`` (text is UTF-8) to ``path`` through ``atomic_file``; returns ``path``.

    Raises:
        UserError: see ``atomic_file``.
    """
    with atomic_file(path, "wb", tmp=tmp, durable=durable) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


@contextmanager
def open_append(path: str | Path, what: str = "log") -> Iterator[IO[str]]:
    """The text file ``path`` opened for appending (created if missing), never through a link.

    Raises:
        UserError: when ``path`` is a symbolic link (naming it), or the disk is full.
    """
    path = Path(path)
    with disk_errors(path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as error:
            if error.errno == errno.ELOOP:
                refuse_link(path, what)
            raise
        with os.fdopen(fd, "a", newline="") as f:
            yield f


def open_lock(path: str | Path) -> IO[str]:
    """The lock file ``path`` opened for ``fcntl.flock`` (created if missing), never through a link.

    Raises:
        UserError: when ``path`` is a symbolic link, naming it.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as error:
        if error.errno == errno.ELOOP:
            refuse_link(path, "lock file")
        raise
    return os.fdopen(fd, "r+")


def _remove(path: Path) -> None:
    """Removes the file or link ``path`` if there is one (a link goes, its target stays)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        pass
