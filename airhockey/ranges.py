"""The one validation layer of numeric settings: each config field declares its range, checked in one place.

A numeric field of a config dataclass is annotated with its allowed range::

    hidden_channels: Annotated[int, Range(1, 1024)] = 16

and the dataclass's ``__post_init__`` calls ``check_fields(self)`` first. However a config is made
(the CLI's options, ``--set key=value``, a stored ``config.json`` read back with ``from_dict``),
a value of the wrong type, NaN, an infinity or a number outside its range is refused there with
one line that names the field and the range. In a tuple (``tuple[Annotated[int, Range(1, 64)],
...]``) each element is checked; a tuple of fixed length must have that length. A numeric field
without a range is still checked to be a finite number of its type (the test suite checks that
every numeric field of the package's configs declares one).

The upper bounds are sanity limits, far above any setting that fits in memory and time on the
machines this package runs on; they keep a typo (100,000 channels) from ending in an
out-of-memory traceback minutes later.

Some defaults depend on another field (a classifier freezes its encoder for 3 epochs, but at most
``epochs - 1``): such a field is ``None`` by default and resolved in ``__post_init__`` with
``set_derived``, which remembers it, so that ``replace_derived`` re-derives it when the fields it
depends on change and it was not given.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from airhockey.errors import UserError

SEED_MAX = 2**63 - 1
"""The largest seed: numpy's ``SeedSequence`` and torch take any non-negative 64-bit integer."""


@dataclass(frozen=True)
class Range:
    """The interval a number must lie in; None for no bound on that side."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """Exclude ``low`` itself (a learning rate above 0)."""
    high_open: bool = False
    """Exclude ``high`` itself (a fraction below 1)."""

    def contains(self, value: float) -> bool:
        """Whether ``value`` (a finite number) lies in the interval."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """The interval as ``[1, 1024]``, ``(0, 10]`` or ``>= 0``."""
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {_number(self.high)}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{left}{_number(self.low)}, {_number(self.high)}{right}"


def _number(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_number(name: str, value: Any, allowed: Range | None, integer: bool = False) -> None:
    """Checks one number: of the right type, finite, in ``allowed``.

    Raises:
        UserError: ``<name> must be an integer in [1, 1024], got -1`` (a finite number, for floats).
    """
    kind = "an integer" if integer else "a finite number"
    where = f" in {allowed.describe()}" if allowed is not None else ""
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if (
        isinstance(value, bool)
        or not ok_type
        or not math.isfinite(value)
        or (allowed is not None and not allowed.contains(value))
    ):
        raise UserError(f"{name} must be {kind}{where}, got {value!r}")


def check_fields(config: Any) -> None:
    """Checks every numeric field of the dataclass instance ``config`` against its declared range.

    Raises:
        UserError: one line naming the first field that is not a number of its type, not finite,
            or out of its range (which the message gives), or a tuple of the wrong length.
    """
    for name, hint in _hints(type(config)).items():
        _check_value(name, hint, getattr(config, name))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _split(hint: Any) -> tuple[Any, Range | None]:
    """A hint without its ``Annotated`` wrapper, and the ``Range`` it carried."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return base, next((e for e in extras if isinstance(e, Range)), None)
    return hint, None


def _check_value(name: str, hint: Any, value: Any, allowed: Range | None = None) -> None:
    hint, own = _split(hint)
    allowed = own or allowed
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return
        options = [a for a in args if a is not type(None)]
        matching = [a for a in options if _kind(a) == _kind_of(value)] or options
        _check_value(name, matching[0], value, allowed)
    elif origin in (tuple, list):
        if not isinstance(value, tuple | list):
            return  # not a sequence: the config's own checks (or its users) refuse it
        fixed = origin is tuple and args and args[-1] is not Ellipsis
        if fixed and len(value) != len(args):
            raise UserError(f"{name} must hold {len(args)} values, got {tuple(value)!r}")
        for i, item in enumerate(value):
            _check_value(name, args[i] if fixed else (args[0] if args else Any), item, allowed)
    elif hint in (int, float):
        check_number(name, value, allowed, integer=hint is int)


def _kind(hint: Any) -> str:
    base = _split(hint)[0]
    return "sequence" if typing.get_origin(base) in (tuple, list) else getattr(base, "__name__", "")


def _kind_of(value: Any) -> str:
    return "sequence" if isinstance(value, tuple | list) else type(value).__name__


def field_range(cls: type, name: str) -> Range | None:
    """The ``Range`` declared on field ``name`` of the dataclass ``cls`` (on its elements, for a tuple)."""
    hint = _hints(cls)[name]
    while True:
        hint, allowed = _split(hint)
        if allowed is not None:
            return allowed
        args = [a for a in typing.get_args(hint) if a is not type(None) and a is not Ellipsis]
        if not args:
            return None
        hint = args[0]


def set_derived(config: Any, name: str, value: Any) -> None:
    """Sets field ``name`` of the frozen dataclass ``config`` to a default derived from other fields
    (in its ``__post_init__``), and remembers that it was derived, not given."""
    object.__setattr__(config, name, value)
    object.__setattr__(config, "_derived", derived_fields(config) | {name})


def derived_fields(config: Any) -> frozenset[str]:
    """The fields of ``config`` whose values were derived (``set_derived``), not given."""
    return getattr(config, "_derived", frozenset())


def replace_derived(config: Any, **changes: Any) -> Any:
    """``dataclasses.replace(config, **changes)``, re-deriving the derived fields not in ``changes``
    (so that ``epochs=1`` lowers a derived ``freeze_epochs`` instead of contradicting it)."""
    again = {name: None for name in derived_fields(config) if name not in changes}
    return dataclasses.replace(config, **again, **changes)
