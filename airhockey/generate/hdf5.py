"""The HDF5 backend: writing one shard file crash-safely, and opening one with clear errors.

A shard is one HDF5 file holding its episodes end to end::

    /                  attributes: format, format_version, package_version, env_id, env_kwargs,
                       policy, generator_seed, config, shard_index, first_episode, label_names,
                       episodes, frames, class_counts, attempts, discards
    /frames            (F, H, W, 3) uint8    all episodes' frames, one after another
    /bar_pos, /bar_vel, /puck_pos, /puck_vel   (F, 2) float64
    /buttons_lit       (F, 5) bool
    /bar_contact, /rim_contact, /button_contact   (F,) bool   (format 2 on)
    /actions           (S, 2) float32        S = F - number of episodes
    /episodes/         one (E,) int64 array per field: frame_start, step_start, length, and the
                       scalars of records.SCALAR_FIELDS (id, label, hit_button, target, ...;
                       strike_frame from format 2 on, derived on read for format 1; policy and
                       layout from format 3 on)
    /episodes/factors  (E, K) float64 (format 3 on): each episode's nuisance factors, column k
                       named by the attribute factor_names[k] (absent without nuisances)

Episode i is ``frames[frame_start[i] : frame_start[i] + length[i]]`` (and so on for the per-frame
arrays) and ``actions[step_start[i] : step_start[i] + length[i] - 1]``. Laid end to end, a shard
costs a few datasets however many episodes it holds, and a clip is one slice of one dataset.
``docs/dataset.md`` documents the same layout for readers that use h5py alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from airhockey.errors import UserError
from airhockey.generate.records import (
    ARRAY_FIELDS,
    EPISODE_FACTORS_VERSION,
    EPISODES_GROUP,
    FACTORS,
    FORMAT,
    FORMAT_VERSION,
    INDEX_FIELDS,
    JSON_ATTRS,
    OLD_SCALARS,
    SCALAR_FIELDS,
    EpisodeRecord,
    first_motion_frame,
    stored_fields,
)
from airhockey.generate.untrusted import check_expected, check_shard_file, checked_attrs
from airhockey.writing import commit, disk_full_error, fresh_temp, is_disk_full, write_atomic

FLUSH_BYTES = 1 << 20
"""Rows of a dataset wait in memory until about this many bytes of whole chunks are there."""
STATE_CHUNK_ROWS = 1024
"""Rows per chunk of the small per-frame and per-step arrays (compressed like the frames, so that
the unused tail of a shard's last chunk costs nothing)."""


DEFLATERS = ("isal", "hdf5")
"""Who compresses ``gzip`` chunks: ``isal`` (ISA-L's deflate, here, chunks written directly) or
``hdf5`` (HDF5's own filter, zlib)."""


@dataclass(frozen=True)
class FrameLayout:
    """How the datasets of a shard are chunked and compressed (the chunking applies to ``frames``)."""

    compression: str | None = "gzip"
    """HDF5 filter: ``gzip``, ``lzf`` or None."""
    level: int | None = 1
    """gzip level: 0-3 with ``deflater="isal"``, 1-9 with ``"hdf5"``; None for other filters."""
    frames_per_chunk: int = 8
    """Frames per chunk."""
    deflater: str = "isal"
    """With ``gzip``: ``isal`` or ``hdf5``, see ``DEFLATERS``."""

    def __post_init__(self) -> None:
        if self.deflater not in DEFLATERS:
            raise ValueError(f"deflater must be one of {DEFLATERS}, got {self.deflater!r}")
        if self.compression == "gzip" and self.deflater == "isal" and self.level not in range(4):
            raise ValueError(f"ISA-L's deflate levels are 0-3, got {self.level!r}")

    @property
    def direct(self) -> bool:
        """Chunks are compressed here and written past HDF5's filter pipeline."""
        return self.compression == "gzip" and self.deflater == "isal"


FRAME_LAYOUT = FrameLayout()
"""The layout ``airhockey generate`` writes: gzip streams made by ISA-L at its level 1, 8 frames
per chunk. Measured by ``benchmarks/shard_formats.py`` (table in docs/dataset.md): 48x smaller than
raw frames and 2.5x smaller than zlib's level 1, for about 7 us of CPU per frame written (zlib's
level 1 through HDF5: 36 us; a 64x64 render: 200-300 us). Any HDF5 reader inflates them with its
standard gzip filter. 8-frame chunks keep a random 10-frame clip to two or three chunks to inflate."""


def fsync_rename(tmp: Path, final: Path) -> None:
    """Flushes ``tmp`` to disk and renames it to ``final``, so ``final`` appears only complete (a
    link at ``final`` is replaced, never followed)."""
    commit(tmp, final, durable=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through ``.<name>.partial`` beside it, fsync and rename."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through ``.<name>.partial`` beside it, fsync and rename.

    Raises:
        UserError: when the disk is full (the partial file is removed).
    """
    write_atomic(path, data, tmp=path.with_name(f".{path.name}.partial"), durable=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _isal_deflate() -> Callable[[Any, int], bytes]:
    """ISA-L's zlib-format deflate, which writing needs (reading needs nothing beyond h5py)."""
    try:
        from isal import isal_zlib
    except ImportError:
        raise UserError(
            "writing shards needs the 'isal' package (ISA-L's deflate): pip install 'airhockey[data]'"
        ) from None
    return isal_zlib.compress


class _Column:
    """An extensible dataset written in whole chunks: rows wait in memory until about
    ``FLUSH_BYTES`` of whole chunks are there, so that each chunk is compressed and written once.

    With ``deflate`` (a ``direct`` layout), each chunk is deflated here by ISA-L and written with
    ``write_direct_chunk``: the dataset still declares HDF5's gzip filter, so any reader inflates
    it, but writing skips HDF5's chunk cache and zlib (several times slower on these frames).
    """

    def __init__(
        self,
        file: h5py.File,
        name: str,
        example: NDArray,
        chunk_rows: int,
        layout: FrameLayout,
        deflate: Callable[[Any, int], bytes] | None,
    ):
        trailing = example.shape[1:]
        self.chunk_rows = chunk_rows
        self.flush_rows = chunk_rows * max(1, FLUSH_BYTES // (example[:1].nbytes * chunk_rows))
        self.level = layout.level
        self.deflate = deflate  # None: HDF5's own filter pipeline compresses, if anything does
        self.dataset = file.create_dataset(
            name,
            shape=(0, *trailing),
            maxshape=(None, *trailing),
            chunks=(chunk_rows, *trailing),
            dtype=ARRAY_FIELDS[name][0],
            compression=layout.compression,
            # HDF5 records the level but never needs it to inflate; ISA-L's levels are not zlib's.
            compression_opts=layout.level,
        )
        self.pending: list[NDArray] = []
        self.pending_rows = 0

    def append(self, rows: NDArray) -> None:
        self.pending.append(rows)
        self.pending_rows += len(rows)
        if self.pending_rows >= self.flush_rows:
            self.flush(whole_chunks_only=True)

    def flush(self, whole_chunks_only: bool = False) -> None:
        if not self.pending_rows:
            return
        data = np.concatenate(self.pending)
        n = len(data) - len(data) % self.chunk_rows if whole_chunks_only else len(data)
        start = self.dataset.shape[0]
        self.dataset.resize(start + n, axis=0)
        if self.deflate is not None:
            self._write_chunks(start, data[:n])
        else:
            self.dataset[start:] = data[:n]
        self.pending = [data[n:]]
        self.pending_rows = len(data) - n

    def _write_chunks(self, start: int, data: NDArray) -> None:
        """Deflates and writes ``data``, rows from ``start`` (a chunk boundary) on."""
        zeros = (0,) * (data.ndim - 1)
        for k in range(0, len(data), self.chunk_rows):
            chunk = data[k : k + self.chunk_rows]
            if len(chunk) < self.chunk_rows:  # HDF5 stores an edge chunk whole: pad it
                chunk = np.concatenate(
                    [chunk, np.zeros((self.chunk_rows - len(chunk), *chunk.shape[1:]), chunk.dtype)]
                )
            payload = self.deflate(np.ascontiguousarray(chunk), self.level)
            self.dataset.id.write_direct_chunk((start + k, *zeros), payload)


class ShardWriter:
    """Writes episodes to ``.<name>.partial`` next to ``path``; ``finish`` makes ``path`` appear.

    Use as a context manager: leaving it by an exception deletes the partial file.

    Args:
        path: the final shard path.
        layout: chunking and compression of the frames.
    """

    def __init__(self, path: Path, layout: FrameLayout = FRAME_LAYOUT) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self.layout = layout
        self._deflate = _isal_deflate() if layout.direct else None
        fresh_temp(self.tmp)  # a link planted at the partial file's name is removed, not followed
        self._file = h5py.File(self.tmp, "w", libver=("v110", "v110"))
        self._columns: dict[str, _Column] = {}
        self._table: dict[str, list[int]] = {name: [] for name in (*INDEX_FIELDS, *SCALAR_FIELDS)}
        self._factors: list[dict[str, float]] = []
        self._rows = {"frame": 0, "step": 0}

    @property
    def count(self) -> int:
        """Episodes added so far."""
        return len(self._table["length"])

    def add(self, record: EpisodeRecord) -> None:
        """Appends one episode."""
        length = len(record.frames)
        for name, value in (
            ("frame_start", self._rows["frame"]),
            ("step_start", self._rows["step"]),
            ("length", length),
            *record.scalars().items(),
        ):
            self._table[name].append(value)
        self._factors.append(record.factors)
        self._rows["frame"] += length
        self._rows["step"] += length - 1
        for name, rows in record.arrays().items():
            if name not in self._columns:
                chunk_rows = self.layout.frames_per_chunk if name == "frames" else STATE_CHUNK_ROWS
                self._columns[name] = _Column(self._file, name, rows, chunk_rows, self.layout, self._deflate)
            self._columns[name].append(rows)

    def finish(self, attrs: dict[str, Any]) -> str:
        """Writes the episode table and the shard's attributes, closes, fsyncs, renames into place.

        Returns:
            The SHA-256 of the finished file.
        """
        for column in self._columns.values():
            column.flush()
        table = self._file.create_group(EPISODES_GROUP)
        for name, values in self._table.items():
            table.create_dataset(name, data=np.array(values, dtype=np.int64))
        names = sorted({name for factors in self._factors for name in factors})
        if names:  # none without nuisances
            factors = [[row.get(name, np.nan) for name in names] for row in self._factors]
            table.create_dataset(FACTORS, data=np.array(factors, dtype=np.float64))
        attrs = {**attrs, "factor_names": names}
        for name, value in {"format": FORMAT, "format_version": FORMAT_VERSION, **attrs}.items():
            self._file.attrs[name] = json.dumps(value, sort_keys=True) if name in JSON_ATTRS else value
        self._file.close()
        fsync_rename(self.tmp, self.path)
        return sha256_file(self.path)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._file.close()
            self.tmp.unlink(missing_ok=True)
            if exc is not None and is_disk_full(exc):
                raise disk_full_error(self.path) from None


def _reason(err: BaseException) -> str:
    """HDF5's own reason inside an h5py error message, else the message, on one line."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text.split("(", 1)[-1].rstrip(")") if "(" in text else text


@contextmanager
def reading(path: Path, what: str) -> Iterator[None]:
    """Turns an error raised while reading ``what`` from the shard ``path`` into one line naming both.

    The one place where damage found at read time (a corrupt compressed chunk, a broken
    attribute or table) becomes a user error: HDF5 reports it through h5py as OSError,
    RuntimeError, KeyError, ValueError or TypeError, none naming the file.

    Raises:
        UserError: ``<path>: cannot read <what> (<HDF5's reason>): ...``.
    """
    try:
        yield
    except UserError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:
        raise UserError(
            f"{path}: cannot read {what} ({_reason(err)}): the file is damaged; "
            "`airhockey data verify` checks a dataset"
        ) from None


LOCKED = "unable to lock file"
"""HDF5's reason when another process holds the file open for writing."""
UNCLOSED = "file is already open for write"
"""HDF5's reason when a file's consistency flags say a writer has it open (or died before closing it)."""


class UnfinishedShard(UserError):
    """A shard file that a writer has open, or left open when it stopped."""


def _unfinished(path: Path, reason: str) -> UnfinishedShard:
    return UnfinishedShard(
        f"{path}: not finished: {reason}; wait for the writer to finish (`airhockey generate ... "
        "--resume` completes a dataset whose writer stopped)"
    )


def unfinished(path: Path) -> UnfinishedShard | None:
    """Why the shard file ``path`` is still being written (or was left so), or None."""
    try:
        _open_file(Path(path)).close()
    except UnfinishedShard as err:
        return err
    except UserError:
        return None
    return None


def _open_file(path: Path) -> h5py.File:
    """``h5py.File(path, "r")``, telling a file still being written from a damaged one."""
    if path.name.endswith(".partial"):
        raise _unfinished(path, "a .partial file is a shard being written")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        reason = _reason(err)
        if LOCKED in reason:
            raise _unfinished(path, "another process holds it open for writing") from None
        if UNCLOSED in reason:
            raise _unfinished(path, "its writer still has it open, or stopped before closing it") from None
        raise UserError(
            f"{path}: not a readable HDF5 file ({reason}): truncated, corrupt or not a shard"
        ) from None
    if f.mode != "r":  # HDF5 shares one handle per file in a process: a writer here holds this one
        f.close()
        raise _unfinished(path, "this process holds it open for writing")
    return f


def open_shard(path: Path, expected: dict[str, Any] | None = None) -> h5py.File:
    """Opens a shard for reading, checking that it is one this package can read and may read safely.

    Before anything is read, the shard's attributes and the storage, dtype and shape of every
    dataset are checked (``untrusted.check_shard_file``): data kept outside the file (external
    storage, virtual datasets, links), more rows than the file holds, oversized chunks and filter
    plugins are refused.

    Args:
        path: the shard file.
        expected: what the dataset's manifest says of this shard (``untrusted.manifest_expectations``):
            attribute name -> value.

    Raises:
        UserError: one line naming the file, when it is missing, still being written, not HDF5
            (truncated or foreign), not an episode shard, of a newer format version, refused by
            those checks, or other than ``expected``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such shard file")
    f = _open_file(path)
    try:
        with reading(path, "its attributes"):
            if f.attrs.get("format") != FORMAT or EPISODES_GROUP not in f:
                raise UserError(
                    f"{path}: an HDF5 file but not an airhockey episode shard (no format={FORMAT!r})"
                )
            version = f.attrs.get("format_version", -1)
            if isinstance(version, (int, np.integer)) and version > FORMAT_VERSION:
                raise UserError(
                    f"{path}: shard format version {version} is newer than this package reads "
                    f"({FORMAT_VERSION}); upgrade airhockey"
                )
        with reading(path, "its layout"):
            attrs = check_shard_file(f, path)
        if expected is not None:
            check_expected(attrs, expected, path)
    except UserError:
        f.close()
        raise
    return f


def shard_attrs(f: h5py.File) -> dict[str, Any]:
    """The attributes of a shard opened by ``open_shard``, JSON ones decoded, arrays as lists, checked.

    Raises:
        UserError: one line naming the file, for an attribute of the wrong type or range
            (``untrusted.checked_attrs``).
    """
    path = Path(f.filename)
    with reading(path, "its attributes"):
        return checked_attrs(f, path)


def shard_version(f: h5py.File) -> int:
    """The format version of an open shard (-1 where the attribute is missing)."""
    return int(f.attrs.get("format_version", -1))


def episode_table(f: h5py.File) -> dict[str, NDArray[np.int64]]:
    """The shard's per-episode arrays (``INDEX_FIELDS`` and ``SCALAR_FIELDS``), each (E,) int64.

    A format 1 shard stores no ``strike_frame``: it is derived from the stored puck velocities
    (``records.first_motion_frame``, an approximation).
    """
    stored = stored_fields(shard_version(f))[1]
    table = {name: f[EPISODES_GROUP][name][()] for name in (*INDEX_FIELDS, *stored)}
    for name, value in OLD_SCALARS.items():
        if name not in stored:
            table[name] = np.full(len(table["length"]), value, dtype=np.int64)
    if "strike_frame" not in stored:
        puck_vel = f["puck_vel"][()]
        table["strike_frame"] = np.array(
            [
                first_motion_frame(puck_vel[start : start + length])
                for start, length in zip(table["frame_start"], table["length"], strict=True)
            ],
            dtype=np.int64,
        )
    return {name: table[name] for name in (*INDEX_FIELDS, *SCALAR_FIELDS)}


def episode_factors(f: h5py.File) -> dict[str, NDArray[np.float64]]:
    """Each episode's nuisance factors by name, each (E,) float64 (NaN where an episode lacks
    one); none without nuisances, or for shards before format 3 (``EPISODE_FACTORS_VERSION``)."""
    names = shard_attrs(f).get("factor_names") if shard_version(f) >= EPISODE_FACTORS_VERSION else None
    if not names:
        return {}
    values = f[EPISODES_GROUP][FACTORS][()]
    return {name: values[:, k] for k, name in enumerate(names)}


def index_problems(table: dict[str, NDArray[np.int64]], attrs: dict[str, Any] | None = None) -> list[str]:
    """Problems of an episode table's index: every episode at least one frame long, the episodes
    laid end to end from row 0 (the layout above), every field one value per episode; with the
    shard's ``attrs``, the episodes numbered from its ``first_episode`` on and their lengths
    summing to its ``frames``."""
    lengths = table["length"]
    if lengths.ndim != 1 or any(values.shape != lengths.shape for values in table.values()):
        return [f"episode table fields have shapes {sorted({v.shape for v in table.values()})}"]
    if len(lengths) and lengths.min() < 1:
        return [f"episodes/length holds {int(lengths.min())}: every episode has at least one frame"]
    if attrs is not None:
        ids = attrs["first_episode"] + np.arange(len(lengths))
        if not np.array_equal(table["id"], ids):
            return [f"episodes/id is not {ids.tolist()} (from the attribute first_episode)"]
        if int(lengths.sum()) != attrs["frames"]:
            total = int(lengths.sum())
            return [f"episodes/length sums to {total}, the attribute frames is {attrs['frames']}"]
    starts = {
        "frame_start": np.cumsum(np.concatenate([[0], lengths]))[:-1],
        "step_start": np.cumsum(np.concatenate([[0], lengths - 1]))[:-1],
    }
    return [
        f"episodes/{name} is not {values.tolist()}"
        for name, values in starts.items()
        if not np.array_equal(table[name], values)
    ]
