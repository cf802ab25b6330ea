"""Which extra to install: one message for every optional dependency that is missing.

A plain ``pip install airhockey`` makes, resets and renders the environment; the other stages need
the package's extras (``pyproject.toml``'s ``[project.optional-dependencies]``): ``data`` (h5py),
``agent`` (stable-baselines3, torch), ``learn`` (torch, scikit-learn), ``ray`` and the others. A
stage imports such a package inside the function that needs it; when the package is absent,
``missing_extra_error`` turns the ImportError into one line naming the extra:

    generate needs the 'data' extra: pip install "airhockey[data]"

The extras and what they install are read from the installed package's own metadata, so an extra
added to ``pyproject.toml`` needs no change here. The CLI's error boundary
(``airhockey.cli.common.user_errors``) applies this to every command; library code can call
``require``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import re
from types import ModuleType

from airhockey.errors import UserError

DISTRIBUTION = "airhockey"
"""The name this package is installed under."""

IMPORT_NAMES = {"scikit-learn": "sklearn", "pyyaml": "yaml", "opencv-python-headless": "cv2"}
"""Import names of the dependencies whose import name is not their distribution name (normalised)."""

_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


class MissingExtra(UserError):
    """An optional dependency is not installed; the message names the extra that installs it."""


@functools.cache
def extras_by_module() -> dict[str, tuple[str, ...]]:
    """The extras that install each top-level module: those that list it, in the order the package
    metadata lists them, then those made of other extras (``all``, ``dev``) that include one of them.

    Returns:
        ``{import name: (extra, ...)}``, e.g. ``{"h5py": ("data", "learn", "all", "dev"), ...}``; empty
        where the package's metadata cannot be found (a source tree that was never installed).
    """
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    direct: dict[str, list[str]] = {}
    composite: dict[str, set[str]] = {}  # extra -> the extras it is made of
    for requirement in requirements:
        name, extra = _REQUIREMENT.match(requirement), _EXTRA_MARKER.search(requirement)
        if name is None or extra is None:
            continue
        distribution = re.sub(r"[-_.]+", "-", name.group(1)).lower()
        if distribution == DISTRIBUTION:
            parts = re.search(r"\[([^\]]*)\]", requirement)
            composite.setdefault(extra.group(1), set()).update(
                part.strip() for part in (parts.group(1).split(",") if parts else [])
            )
            continue
        module = IMPORT_NAMES.get(distribution, distribution.replace("-", "_"))
        direct.setdefault(module, [])
        if extra.group(1) not in direct[module]:
            direct[module].append(extra.group(1))
    return {module: (*extras, *_including(extras, composite)) for module, extras in direct.items()}


def _including(extras: list[str], composite: dict[str, set[str]]) -> list[str]:
    """The composite extras that include any of ``extras``, directly or through another composite."""
    found: list[str] = []
    changed = True
    while changed:
        changed = False
        for name, parts in composite.items():
            if name not in found and name not in extras and parts & {*extras, *found}:
                found.append(name)
                changed = True
    return found


def missing_extra(err: ImportError, prefer: str | None = None) -> str | None:
    """The extra to install for a failed import, or None where the failure is something else.

    Args:
        err: the error an ``import`` raised.
        prefer: the extra to name when several install the module (the command's own stage,
            e.g. ``learn`` for torch under ``airhockey learn``); default: the first listed.

    Returns:
        The extra's name, only when the module that failed is a dependency of some extra and is
        absent (not merely broken: an installed package whose own import fails is not this case).
    """
    if err.name is None:
        return None
    module = err.name.partition(".")[0]
    extras = extras_by_module().get(module)
    if not extras:
        return None
    try:
        absent = importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        absent = True
    if not absent:
        return None
    return prefer if prefer in extras else extras[0]


def install_command(extra: str) -> str:
    """The command that installs ``extra``: ``pip install "airhockey[<extra>]"``."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def missing_extra_error(err: ImportError, feature: str, prefer: str | None = None) -> MissingExtra | None:
    """The one-line error for a feature whose optional dependency is absent; None where it is not that.

    Args:
        err: the error an ``import`` raised.
        feature: what needs it, as the user knows it (``generate``, ``learn pretext``, ``reading shards``).
        prefer: as for ``missing_extra``.
    """
    extra = missing_extra(err, prefer)
    if extra is None:
        return None
    return MissingExtra(f"{feature} needs the '{extra}' extra: {install_command(extra)}")


def require(module: str, feature: str, prefer: str | None = None) -> ModuleType:
    """Imports ``module`` for ``feature``.

    Raises:
        MissingExtra: when ``module`` is not installed, naming the extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        error = missing_extra_error(err, feature, prefer)
        if error is None:
            raise
        raise error from None
