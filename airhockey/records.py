"""Typed JSON records: frozen dataclasses to plain JSON data and back, checked field by field.

A record is a frozen dataclass whose fields are ``int``, ``float``, ``bool``, ``str``, ``Any``,
other records, ``tuple[X, ...]``, ``list[X]``, ``dict[str, X]``, ``dict[int, X]`` (keys written as strings,
as JSON has no other) and ``X | None``. Floats may be NaN in memory; JSON writes them as null
(``jsonio.write_json``) and a float field reads null back as NaN. A field whose metadata has
``OMIT`` is left out of the JSON while it is None, and read as None when absent. A field whose
metadata has ``REST`` (a ``dict[str, X]``) holds the keys of the object that no other field
names, written back beside them: records of files with open-ended keys (a run's metrics).

Every state file of the package is read through ``read_record`` (or ``read_json_file`` and
``from_json``), which names the file and the field of the first thing that does not fit, in one line;
JSON's non-standard ``NaN`` and ``Infinity`` are refused (the package writes NaN as null).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from airhockey.errors import UserError

OMIT = {"omit_if_none": True}
"""Field metadata: the key is absent from the JSON while the value is None."""
REST = {"rest": True}
"""Field metadata of a ``dict[str, X]`` field: the object's keys that no other field names."""

R = TypeVar("R")


class RecordError(ValueError):
    """A value that does not fit its field; ``where`` is the field's path (``budgets[0].arms.x``)."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where or 'the top level'}: {what}")
        self.where, self.what = where, what


def to_json(value: Any) -> Any:
    """``value`` (a record, or what a record holds) as plain data: dicts, lists, numbers, strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.metadata.get("omit_if_none"):
                continue
            if f.metadata.get("rest"):
                out.update(to_json(item))
                continue
            out[f.name] = to_json(item)
        return out
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(cls: type[R], data: Any, where: str = "") -> R:
    """The record ``cls`` of plain data ``data``.

    Raises:
        RecordError: for a missing field, an unknown one, or a value of the wrong type.
    """
    return _read(cls, data, where)


def read_json_file(path: Path) -> Any:
    """The JSON in ``path``.

    Raises:
        UserError: for a file that is missing or not JSON (``NaN`` and ``Infinity`` included), in
            one line naming it.
    """
    try:
        return json.loads(Path(path).read_text(), parse_constant=_refuse_constant)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(
            f"{path} is not a JSON file (not valid JSON: {error}): restore it or run again"
        ) from None


def read_record(cls: type[R], path: Path, what: str = "") -> R:
    """The record ``cls`` in the JSON file ``path``.

    Args:
        cls: the record type.
        path: the file.
        what: what the file is, for the message (e.g. ``"pretext run's metrics"``).

    Raises:
        UserError: one line naming the file and the field, for a file that is missing, not JSON,
            or does not fit ``cls`` (a missing, unknown or mistyped field).
    """
    return record_of(cls, read_json_file(path), path, what)


def record_of(cls: type[R], data: Any, path: Path, what: str = "") -> R:
    """The record ``cls`` of ``data``, read from the file ``path``.

    Raises:
        UserError: one line naming the file and the field, where ``data`` does not fit ``cls``.
    """
    try:
        return from_json(cls, data)
    except RecordError as error:
        field = f"field {error.where!r}: " if error.where else ""
        kind = f", not a {what}" if what else ""
        raise UserError(f"{path}: {field}{error.what}{kind}: restore it or run again") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _read(tp: Any, data: Any, where: str) -> Any:
    if tp is Any:
        return data
    if dataclasses.is_dataclass(tp):
        return _read_record(tp, data, where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        for i, kind in enumerate(kinds):
            try:
                return _read(kind, data, where)
            except RecordError:
                if i == len(kinds) - 1:
                    raise
        raise RecordError(where, "null where a value belongs")
    if origin in (tuple, list):
        if not isinstance(data, list):
            raise RecordError(where, f"expected a list, found {_kind(data)}")
        return origin(_read(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise RecordError(where, f"expected an object, found {_kind(data)}")
        key_type, value_type = args
        out = {}
        for k, v in data.items():
            key: Any = k
            if key_type is int:
                try:
                    key = int(k)
                except ValueError:
                    raise RecordError(f"{where}.{k}".lstrip("."), "expected a whole-number key") from None
            out[key] = _read(value_type, v, f"{where}.{k}".lstrip("."))
        return out
    return _read_scalar(tp, data, where)


def _read_scalar(tp: Any, data: Any, where: str) -> Any:
    if tp is float:
        if data is None:
            return math.nan  # JSON has no NaN: the writer stores it as null
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return data
    elif tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
    elif tp in (bool, str):
        if isinstance(data, tp):
            return data
    else:
        raise TypeError(f"records cannot hold {tp!r}")
    raise RecordError(where, f"expected {tp.__name__}, found {_kind(data)}")


def _read_record(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise RecordError(where, f"expected an object, found {_kind(data)}")
    hints = _hints(cls)
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields if not f.metadata.get("rest")}
    unknown = [k for k in data if k not in names]
    values = {}
    for f in fields:
        path = f"{where}.{f.name}".lstrip(".")
        if f.metadata.get("rest"):
            values[f.name] = _read(hints[f.name], {k: data[k] for k in unknown}, where)
            unknown = []
            continue
        if f.name not in data:
            if f.metadata.get("omit_if_none"):
                values[f.name] = None
                continue
            raise RecordError(path, "missing")
        values[f.name] = _read(hints[f.name], data[f.name], path)
    if unknown:
        raise RecordError(f"{where}.{unknown[0]}".lstrip("."), "unknown field")
    return cls(**values)


def _kind(data: Any) -> str:
    return "null" if data is None else type(data).__name__


def versioned_record(
    cls: type[R],
    data: Any,
    source: str | Path,
    *,
    current: int,
    upgrade: Callable[[dict[str, Any]], dict[str, Any]],
    file: str,
    kind: str,
    remedy: str,
) -> R:
    """The record ``cls`` of a versioned file's plain data: a file of an older version (one without
    ``format_version`` is version 0) goes through ``upgrade`` (to ``current``), a newer or unknown
    version is refused.

    Args:
        file: what the file is, for the message (e.g. "a comparison's results.json").
        kind: the format's name in the message (e.g. "results").
        remedy: what to do about a damaged file (e.g. "run the comparison again").

    Raises:
        UserError: one line naming ``source``: not a JSON object, an unknown version, or a field
            that does not fit ``cls``.
    """
    if not isinstance(data, dict):
        raise UserError(f"{source} is not {file} (not a JSON object)")
    version = data.get("format_version", 0)
    older = isinstance(version, int) and not isinstance(version, bool) and 0 <= version < current
    if older:
        data = upgrade(data)
    elif version != current:
        raise UserError(
            f"{source} has {kind} format version {version!r}; this version of airhockey reads "
            f"{current} and older: upgrade airhockey"
        )
    try:
        return from_json(cls, data)
    except RecordError as error:
        raise UserError(f"{source}: field {error}: the file is damaged; {remedy}") from None
