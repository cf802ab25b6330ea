"""What a shard file must be before anything is read from it: checked attributes and storage.

A shard may come from anywhere (downloaded, copied, hand-edited), and HDF5 lets a file do more
than hold its data: a dataset can keep its bytes in other files (external storage, a virtual
dataset, an external link), declare far more rows than the file holds (chunks never written read
back as fill values, so a 16 KB file can declare 2^33 frames), compress one huge chunk to a few
bytes, or need a filter plugin loaded from disk. ``check_shard_file`` refuses all of these from
the file's metadata alone, before one row is read, so that a reader reads this file's own bytes
and never more memory than the file can hold inflated chunk by chunk:

- every member is a hard link to a dataset of the schema (``records``), or the ``episodes`` group;
- every dataset's dtype and shape are the schema's, its row count the one its attributes state;
- its storage is in this file: contiguous (allocated, inside the file), compact, or chunked with
  every chunk written, each at most ``MAX_CHUNK_BYTES`` inflated, through the filters a shard
  uses (gzip, lzf, shuffle, fletcher32) only.

``checked_attrs`` decodes the shard's attributes and checks their types and ranges (the config
a valid ``GenerateConfig``, ``env_kwargs`` and ``label_names`` the ones it gives, counts
non-negative integers) before they reach the env or a reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from h5py import h5d, h5z

import airhockey
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig
from airhockey.generate.records import (
    ARRAY_FIELDS,
    EPISODE_FACTORS_VERSION,
    EPISODES_GROUP,
    FACTORS,
    FORMAT_VERSION,
    INDEX_FIELDS,
    JSON_ATTRS,
    stored_fields,
)

MAX_CHUNK_BYTES = 1 << 24
"""Most bytes one chunk may inflate to (16 MiB; or one row, where a row is bigger): shards chunk
8 frames or 1024 state rows, kilobytes to a few megabytes."""
FILTERS = {
    h5z.FILTER_DEFLATE: "gzip",
    h5z.FILTER_SHUFFLE: "shuffle",
    h5z.FILTER_FLETCHER32: "fletcher32",
    h5z.FILTER_LZF: "lzf",
}
"""The HDF5 filters a shard's chunks may pass through: any other needs a plugin, code from disk."""
COUNTS = ("shard_index", "first_episode", "episodes", "frames", "attempts", "generator_seed")
"""Shard attributes that are non-negative integers."""
REQUIRED = (
    "format_version",
    "env_id",
    "env_kwargs",
    "config",
    "label_names",
    "class_counts",
    "shard_index",
    "first_episode",
    "episodes",
    "frames",
)
"""Shard attributes a reader uses; the others are checked where present."""


def _problem(path: Path, text: str) -> UserError:
    return UserError(f"{path}: {text}")


def _decode(f: h5py.File, path: Path) -> dict[str, Any]:
    """The attributes as Python values: JSON ones decoded, numpy scalars and arrays as Python's."""
    out: dict[str, Any] = {}
    for name, value in f.attrs.items():
        if name in JSON_ATTRS:
            if not isinstance(value, str):
                raise _problem(path, f"attribute {name} is not JSON text")
            try:
                out[name] = json.loads(value)
            except json.JSONDecodeError as err:
                raise _problem(path, f"attribute {name} is not valid JSON ({err})") from None
        elif isinstance(value, np.ndarray):
            out[name] = value.tolist()
        elif isinstance(value, np.generic):
            out[name] = value.item()
        else:
            out[name] = value
    return out


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def checked_attrs(f: h5py.File, path: Path) -> dict[str, Any]:
    """The shard's attributes, decoded (JSON ones parsed, arrays as lists) and checked.

    Raises:
        UserError: one line naming the file and the attribute, when one a reader uses is missing,
            or any has the wrong type or range, or ``env_id``, ``env_kwargs`` or ``label_names``
            do not follow from ``config``.
    """
    attrs = _decode(f, path)
    missing = [name for name in REQUIRED if name not in attrs]
    if missing:
        raise _problem(path, f"missing shard attributes {missing}")
    version = attrs["format_version"]
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise _problem(path, f"attribute format_version is {version!r}, not 1-{FORMAT_VERSION}")
    wrong = [name for name in COUNTS if name in attrs and not _is_count(attrs[name])]
    wrong += [
        name
        for name, kind in (("policy", dict), ("discards", dict), ("package_version", str), ("config", dict))
        if name in attrs and not isinstance(attrs[name], kind)
    ]
    if wrong:
        raise _problem(path, f"attributes {wrong} have the wrong type or a negative value")
    config = attrs["config"]
    try:
        settings = GenerateConfig(**config)
    except (TypeError, ValueError, UserError) as err:
        raise _problem(path, f"attribute config is not a dataset's settings ({err})") from None
    if not all(isinstance(config.get(k), str) for k in ("camera", "labels", "policy")):
        raise _problem(path, "attribute config: camera, labels and policy must be strings")
    derived = {
        "env_id": airhockey.ENV_ID,
        "env_kwargs": settings.env_kwargs(),
        "label_names": list(settings.label_names),
    }
    wrong = [name for name, value in derived.items() if attrs[name] != value]
    if wrong:
        raise _problem(path, f"attributes {wrong} do not follow from its config")
    counts = attrs["class_counts"]
    if not (
        isinstance(counts, list)
        and len(counts) == len(settings.label_names)
        and all(_is_count(c) for c in counts)
        and sum(counts) == attrs["episodes"]
    ):
        raise _problem(
            path, f"attribute class_counts is {counts!r}: one count per class, summing to the episodes"
        )
    if attrs["frames"] < attrs["episodes"]:
        raise _problem(path, f"attributes say {attrs['episodes']} episodes in {attrs['frames']} frames")
    if "discards" in attrs and not all(_is_count(n) for n in attrs["discards"].values()):
        raise _problem(path, "attribute discards holds a count that is not a non-negative integer")
    names = attrs.get("factor_names")
    if version >= EPISODE_FACTORS_VERSION and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)
    ):
        raise _problem(path, f"attribute factor_names is {names!r}, not a list of distinct names")
    return attrs


def schema(attrs: dict[str, Any]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Every dataset a shard with these (checked) attributes holds: path -> (dtype, shape)."""
    arrays, scalars = stored_fields(attrs["format_version"])
    frames, episodes = attrs["frames"], attrs["episodes"]
    kwargs = attrs["env_kwargs"]
    out = {}
    for name in arrays:
        dtype, trailing, per = ARRAY_FIELDS[name]
        if name == "frames":
            trailing = (kwargs["height"], kwargs["width"], 3)
        out[name] = (dtype, (frames - episodes if per == "step" else frames, *trailing))
    for name in (*INDEX_FIELDS, *scalars):
        out[f"{EPISODES_GROUP}/{name}"] = (np.dtype(np.int64), (episodes,))
    if attrs["format_version"] >= EPISODE_FACTORS_VERSION and attrs["factor_names"]:
        out[f"{EPISODES_GROUP}/{FACTORS}"] = (np.dtype(np.float64), (episodes, len(attrs["factor_names"])))
    return out


def _members(group: h5py.Group, path: Path) -> dict[str, h5py.Dataset]:
    """The datasets under ``group``, by path, refusing links that are not hard and unknown groups."""
    out = {}
    for name in group:
        where = f"{group.name.strip('/')}/{name}".lstrip("/")
        link = group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            kind = type(link).__name__
            raise _problem(path, f"{where} is a {kind} (to another place or file), which a shard never holds")
        member = group[name]
        if isinstance(member, h5py.Dataset):
            out[where] = member
        elif isinstance(member, h5py.Group) and where == EPISODES_GROUP:
            out.update(_members(member, path))
        else:
            raise _problem(path, f"{where} is a {type(member).__name__}, which a shard never holds")
    return out


def _storage_problem(dataset: h5py.Dataset, file_size: int) -> str | None:
    """Why a dataset's data may not be read from this file alone within bounded memory, or None."""
    plist = dataset.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5d.VIRTUAL:
        return "is a virtual dataset (its data would come from other files)"
    if plist.get_external_count():
        return "keeps its data in external files"
    nbytes = math.prod(dataset.shape) * dataset.dtype.itemsize
    if layout == h5d.COMPACT:
        return None
    if layout == h5d.CONTIGUOUS:
        offset = dataset.id.get_offset()
        if nbytes and (offset is None or offset + nbytes > file_size):
            return f"declares {nbytes} bytes that the file does not hold"
        return None
    if layout != h5d.CHUNKED:
        return f"has an unknown storage layout ({layout})"
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    foreign = [code for code in filters if code not in FILTERS]
    if foreign:
        return f"needs HDF5 filter {foreign[0]}, which shards never use (it would load a plugin)"
    chunk_bytes = math.prod(dataset.chunks) * dataset.dtype.itemsize
    row_bytes = math.prod(dataset.shape[1:]) * dataset.dtype.itemsize
    if chunk_bytes > max(MAX_CHUNK_BYTES, row_bytes):
        return f"has chunks of {chunk_bytes} bytes, more than the {MAX_CHUNK_BYTES} a shard's chunk may hold"
    needed = math.prod(-(-n // c) for n, c in zip(dataset.shape, dataset.chunks, strict=True))
    written = dataset.id.get_num_chunks() if needed else 0
    if written != needed or dataset.id.get_storage_size() > file_size:
        return f"declares {needed} chunks ({nbytes} bytes), the file holds {written}"
    return None


def check_shard_file(f: h5py.File, path: Path) -> dict[str, Any]:
    """Checks an open shard's attributes and every dataset's storage, dtype and shape, reading no data.

    Args:
        f: the shard, open for reading (its ``format`` attribute already checked).
        path: its path, for messages and its size.

    Returns:
        The checked attributes (``checked_attrs``).

    Raises:
        UserError: one line naming the file and what was refused.
    """
    attrs = checked_attrs(f, path)
    members = _members(f, path)
    expected = schema(attrs)
    missing = [name for name in expected if name not in members]
    if missing:
        raise _problem(path, f"missing datasets {missing}")
    extra = sorted(set(members) - set(expected))
    if extra:
        raise _problem(path, f"holds {extra[0]}, which a format {attrs['format_version']} shard does not")
    file_size = path.stat().st_size
    for name, (dtype, shape) in expected.items():
        dataset = members[name]
        if dataset.dtype != dtype or dataset.shape != shape:
            raise _problem(
                path,
                f"{name} is {dataset.dtype} {dataset.shape}, expected {dtype} {shape} (from the "
                "shard's attributes)",
            )
        problem = _storage_problem(dataset, file_size)
        if problem:
            raise _problem(path, f"{name} {problem}: refused before reading")
    return attrs


def manifest_expectations(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """What each shard listed in a (checked) manifest must say of itself, in the manifest's order:
    its ``config``, ``shard_index``, ``first_episode``, ``episodes``, ``frames`` and
    ``class_counts`` attributes, as ``check_expected`` compares them."""
    size = manifest["config"]["shard_size"]
    return [
        {
            "config": manifest["config"],
            "shard_index": entry["index"],
            "first_episode": entry["index"] * size,
            "episodes": entry["episodes"],
            "frames": entry["frames"],
            "class_counts": entry["class_counts"],
        }
        for entry in manifest["shards"]
    ]


def check_expected(attrs: dict[str, Any], expected: dict[str, Any], path: Path) -> None:
    """Checks a shard's (checked) attributes against what its manifest says of it.

    Raises:
        UserError: ``<path>: attribute <name> is <value>, the manifest says <value>``.
    """
    for name, value in expected.items():
        if attrs.get(name) != value:
            raise _problem(path, f"attribute {name} is {attrs.get(name)!r}, the manifest says {value!r}")
