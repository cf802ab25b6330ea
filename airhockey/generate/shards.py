"""Reading a dataset: ``open_shards`` gives a sequence of episodes over lazily opened shard files."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import h5py
import numpy as np
from numpy.typing import NDArray

from airhockey.errors import UserError
from airhockey.generate.hdf5 import (
    episode_table,
    index_problems,
    open_shard,
    reading,
    shard_attrs,
    shard_version,
)
from airhockey.generate.manifest import read_manifest
from airhockey.generate.records import ARRAY_FIELDS, EVENTS_VERSION, SCALAR_FIELDS, stored_fields
from airhockey.generate.untrusted import manifest_expectations


class _OpenShard:
    """A shard opened in this process: its file, its episode table and its datasets, looked up once.

    Every read of the file goes through here, so that damage found while reading is a one-line
    ``UserError`` naming the file (``hdf5.reading``), and a read never returns fewer rows than asked.
    The file is checked before anything is read from it (``hdf5.open_shard``), against what the
    manifest says of it where there is one (``expected``).
    """

    def __init__(self, path: Path, expected: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.file = open_shard(self.path, expected)
        try:
            self.attrs = shard_attrs(self.file)
            """The shard's checked attributes."""
            with reading(self.path, "the episode table"):
                self.table = episode_table(self.file)
            problems = index_problems(self.table, self.attrs)
            if problems:
                raise UserError(f"{self.path}: damaged episode table: {problems[0]}")
        except UserError:
            self.file.close()
            raise
        self.version = shard_version(self.file)
        self.arrays = stored_fields(self.version)[0]
        """The arrays this shard stores (format 1 lacks the events)."""
        self._datasets: dict[str, h5py.Dataset] = {}

    def read(self, name: str, rows: slice) -> NDArray:
        """Rows ``rows`` (a slice with start <= stop) of the dataset ``name``.

        Raises:
            UserError: for an array that the shard's format version does not store, saying how to
                get it; for damage found while reading.
        """
        if name not in self.arrays:
            raise UserError(
                f"{self.path}: format {self.version} shards store no {name} (added in format "
                f"{EVENTS_VERSION}): regenerate the dataset with `airhockey generate` and the settings "
                "in its manifest.json (the same --seed gives the same episodes, with the events)"
            )
        with reading(self.path, f"{name}[{rows.start}:{rows.stop}]"):
            if name not in self._datasets:
                self._datasets[name] = self.file[name]
            out = self._datasets[name][rows]
        if len(out) != rows.stop - rows.start:
            raise UserError(
                f"{self.path}: {name} holds {self._datasets[name].shape[0]} rows, the episode table "
                f"needs {rows.stop}: the file is damaged; `airhockey data verify` checks a dataset"
            )
        return out


def _storage_rows(row: dict[str, int], name: str, start: int | None, stop: int | None) -> slice:
    """Where an episode's rows ``start:stop`` of the array ``name`` lie in the shard's dataset.

    The one place that turns episode-relative positions into storage offsets: ``start`` and
    ``stop`` follow Python's slice semantics within the episode (negative from its end, clipped
    to it, ``stop <= start`` empty), so a read never reaches into a neighbouring episode.
    """
    if name not in ARRAY_FIELDS:
        raise KeyError(name)
    per_step = ARRAY_FIELDS[name][2] == "step"
    first = row["step_start" if per_step else "frame_start"]
    begin, end, _ = slice(start, stop).indices(row["length"] - per_step)
    return slice(first + begin, first + max(begin, end))


class Episode(Mapping[str, Any]):
    """One stored episode: a read-only mapping of its fields, arrays read from the file on access.

    Keys: the arrays of ``records.ARRAY_FIELDS`` that its shard stores (numpy arrays: ``frames``
    (T, H, W, 3), ``actions`` (T - 1, 2), per-frame state and events (T, ...); format 1 shards
    have no events), the integers of ``records.SCALAR_FIELDS``, and ``env_kwargs`` (the dict to
    pass to ``gym.make`` to replay it).
    """

    def __init__(self, shard: _OpenShard, row: dict[str, int], env_kwargs: dict[str, Any]) -> None:
        self._shard, self._row, self._env_kwargs = shard, row, env_kwargs

    def __getitem__(self, key: str) -> Any:
        if key in ARRAY_FIELDS:
            return self._shard.read(key, _storage_rows(self._row, key, None, None))
        if key in SCALAR_FIELDS:
            return self._row[key]
        if key == "env_kwargs":
            return dict(self._env_kwargs)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        # Mapping's own test reads the array, and an array the format lacks is an error to read.
        return key in self._shard.arrays or key in SCALAR_FIELDS or key == "env_kwargs"

    def __iter__(self) -> Iterator[str]:
        yield from self._shard.arrays
        yield from SCALAR_FIELDS
        yield "env_kwargs"

    def __len__(self) -> int:
        return len(self._shard.arrays) + len(SCALAR_FIELDS) + 1

    def __repr__(self) -> str:
        scalars = ", ".join(f"{k}={self._row[k]}" for k in SCALAR_FIELDS)
        return f"Episode({scalars}, length={self._row['length']})"


class EpisodeShards(Sequence[Episode]):
    """The episodes of a set of shard files, in order, with files opened on first use.

    Safe to pickle and to use after ``fork``: each process opens its own file handles. Besides
    indexing, ``info(i)`` gives an episode's scalar fields and length, ``frames(i, start, stop)``
    reads part of its frames, and ``table()`` the scalar fields of all episodes at once.

    Args:
        paths: shard files, in dataset order.
        counts: episodes in each file, where known (from a manifest); else each file is opened
            once to count them.
        attrs: the dataset's attributes, where known; else those of the first shard.
        expected: what the manifest says of each file (``untrusted.manifest_expectations``), where
            there is one: each file is checked against it when it is opened.

    Raises:
        UserError: without ``counts``, when a file cannot be read, or the files are not shards of
            one dataset in increasing episode order.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        counts: Sequence[int] | None = None,
        attrs: dict[str, Any] | None = None,
        expected: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self._expected = list(expected) if expected is not None else None
        self._open: dict[int, _OpenShard] = {}
        self._pid = os.getpid()
        if counts is None:
            shards = [self._shard(i) for i in range(len(self.paths))]
            _check_order(shards)
            counts = [len(shard.table["length"]) for shard in shards]
            attrs = attrs or (shards[0].attrs if shards else {})
            self.close()
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.attrs: dict[str, Any] = attrs or {}
        """The dataset's attributes: env_kwargs, policy, config, label_names, ..."""

    @property
    def label_names(self) -> list[str]:
        """Class names, by label."""
        return list(self.attrs.get("label_names", []))

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 of the shards' SHA-256s in dataset order, from the manifest: equal for datasets
        with the same bytes, and computed without reading the shards; None without a manifest."""
        shards = self.attrs.get("shards")
        if not shards:
            return None
        return hashlib.sha256("".join(entry["sha256"] for entry in shards).encode()).hexdigest()

    def _shard(self, shard: int) -> _OpenShard:
        """A shard, opened in this process on first use."""
        if os.getpid() != self._pid:
            # Handles inherited through fork belong to the parent: forget them, never close them.
            self._open, self._pid = {}, os.getpid()
        if shard not in self._open:
            expected = self._expected[shard] if self._expected is not None else None
            self._open[shard] = _OpenShard(self.paths[shard], expected)
        return self._open[shard]

    def _locate(self, index: int) -> tuple[_OpenShard, dict[str, int]]:
        """The shard holding an episode and the episode's row of the episode table."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"episode {index} out of range for {n} episodes")
        index %= n
        shard = bisect.bisect_right(self._starts, index) - 1
        row = index - int(self._starts[shard])
        found = self._shard(shard)
        if len(found.table["length"]) != self._starts[shard + 1] - self._starts[shard]:
            raise UserError(
                f"{found.path}: holds {len(found.table['length'])} episodes, the manifest lists "
                f"{self._starts[shard + 1] - self._starts[shard]}: run `airhockey data verify`"
            )
        return found, {name: int(values[row]) for name, values in found.table.items()}

    def __len__(self) -> int:
        return int(self._starts[-1])

    @overload
    def __getitem__(self, index: int) -> Episode: ...
    @overload
    def __getitem__(self, index: slice) -> list[Episode]: ...
    def __getitem__(self, index: int | slice) -> Episode | list[Episode]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        shard, row = self._locate(int(index))
        return Episode(shard, row, self.attrs.get("env_kwargs", {}))

    def info(self, index: int) -> dict[str, int]:
        """An episode's scalar fields and its ``length`` in frames, without reading arrays."""
        _, row = self._locate(index)
        return {name: row[name] for name in (*SCALAR_FIELDS, "length")}

    def read(self, index: int, name: str, start: int | None = None, stop: int | None = None) -> NDArray:
        """Part of one array of an episode: ``episodes[index][name][start:stop]``, reading only that part.

        Args:
            index: the episode's index in the dataset (negative from the end).
            name: an array of ``records.ARRAY_FIELDS``: ``frames``, ``actions``, a per-frame state
                or event.
            start, stop: positions within the episode, with Python's slice semantics (negative
                from the episode's end, clipped to it; ``stop <= start`` gives no rows).

        Returns:
            The rows, (n, ...) with the field's dtype.

        Raises:
            IndexError: for an episode index out of range.
            KeyError: for an unknown ``name``.
            UserError: when the shard is damaged, or of a format version that does not store
                ``name`` (one line naming the file).
        """
        shard, row = self._locate(index)
        return shard.read(name, _storage_rows(row, name, start, stop))

    def frames(self, index: int, start: int | None = None, stop: int | None = None) -> NDArray[np.uint8]:
        """Frames ``start:stop`` of an episode (slice semantics, see ``read``), (n, H, W, 3) uint8."""
        return self.read(index, "frames", start, stop)

    def table(self) -> dict[str, NDArray[np.int64]]:
        """The scalar fields and ``length`` of every episode, each an (N,) int64 array."""
        tables = [self._shard(i).table for i in range(len(self.paths))]
        return {name: np.concatenate([t[name] for t in tables]) for name in (*SCALAR_FIELDS, "length")}

    def close(self) -> None:
        """Closes the file handles this process opened."""
        if os.getpid() == self._pid:
            for shard in self._open.values():
                shard.file.close()
        self._open = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_open": {}, "_pid": -1}

    def __enter__(self) -> EpisodeShards:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_order(shards: Sequence[_OpenShard]) -> None:
    """Checks that shard files given without a manifest are of one dataset, in episode order.

    Raises:
        UserError: for files of datasets with other settings, or listed out of order (a later
            file holding earlier episodes), which would renumber the episodes.
    """
    for before, after in itertools.pairwise(shards):
        if after.attrs["config"] != before.attrs["config"]:
            raise UserError(f"{after.path}: a shard of another dataset than {before.path} (other settings)")
        end = before.attrs["first_episode"] + before.attrs["episodes"]
        if after.attrs["first_episode"] < end:
            raise UserError(
                f"{after.path}: holds episodes from {after.attrs['first_episode']} on, before the end "
                f"of {before.path} ({end}): list the shards in order"
            )


def open_shards(path: str | Path | Sequence[str | Path]) -> EpisodeShards:
    """Opens a dataset as a sequence of episodes.

    Args:
        path: a dataset directory (its manifest's shards, else its ``shard-*.h5`` files), one
            shard file, or a list of shard files.

    Returns:
        An ``EpisodeShards``: ``len``, indexing (each item an ``Episode`` mapping), partial reads.

    Raises:
        UserError: one line naming the file, for a missing, truncated, foreign or unfinished file,
            one refused before reading (``hdf5.open_shard``), shards out of episode order, or a
            shard other than its manifest says (checked when the shard is first opened).
    """
    if not isinstance(path, (str, Path)):
        return EpisodeShards([Path(p) for p in path])
    path = Path(path)
    if path.is_file():
        return EpisodeShards([path])
    if not path.is_dir():
        raise UserError(f"{path}: no such dataset directory or shard file")
    manifest = read_manifest(path)
    if manifest is None:
        paths = sorted(path.glob("shard-*.h5"))
        if not paths:
            raise UserError(f"{path}: no shards found (run `airhockey generate {path} --episodes N`)")
        return EpisodeShards(paths)
    paths = [path / entry["file"] for entry in manifest["shards"]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(
            f"{missing[0]}: listed in the manifest but missing; run `airhockey data verify {path}`"
        )
    counts = [entry["episodes"] for entry in manifest["shards"]]
    return EpisodeShards(paths, counts, manifest, manifest_expectations(manifest))
