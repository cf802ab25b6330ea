"""Fuzzing every reader with damaged datasets: flipped bytes, truncated, swapped and missing files,
and datasets stored another way (contiguous, compact, other chunks, external files, virtual,
longer than the episode table), with or without the manifest's checksum made to match.

Each trial damages a copy of a small dataset one way and then reads it every way a user can:
``verify_dataset``, ``open_shards`` (whole episodes and partial reads), the learn stage's
``ClipDataset`` and ``FrameDataset``, and ``airhockey data inspect`` / ``data verify``. A trial
passes when every reader either gives the original data or stops with a one-line ``UserError``
(exit 2 with one ``error:`` line from the CLI), and the data read is correct wherever ``verify``
accepts the dataset. An uncaught exception, a CLI traceback, or a trial over its time limit fails.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from h5py import h5d, h5p
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate import open_shards, verify_dataset
from airhockey.generate.records import ARRAY_FIELDS, SCALAR_FIELDS

TRIALS = 200
SECONDS_PER_TRIAL = 20  # a hang, not a slow read: a trial takes about 0.1 s
runner = CliRunner()


def _flip(files: list[Path], rng: np.random.Generator) -> None:
    path = files[rng.integers(len(files))]
    raw = bytearray(path.read_bytes())
    for _ in range(int(rng.integers(1, 9))):
        raw[int(rng.integers(len(raw)))] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(raw))


def _truncate(files: list[Path], rng: np.random.Generator) -> None:
    path = files[rng.integers(len(files))]
    raw = path.read_bytes()
    path.write_bytes(raw[: int(rng.integers(len(raw)))])


def _swap(files: list[Path], rng: np.random.Generator) -> None:
    a, b = (files[k] for k in rng.choice(len(files), 2, replace=False))
    tmp = a.with_name("swap.tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def _duplicate(files: list[Path], rng: np.random.Generator) -> None:
    a, b = (files[k] for k in rng.choice(len(files), 2, replace=False))
    shutil.copyfile(a, b)


def _delete(files: list[Path], rng: np.random.Generator) -> None:
    files[rng.integers(len(files))].unlink()


def _store(f: h5py.File, name: str, data: np.ndarray, where: Path, rng: np.random.Generator) -> None:
    """Creates dataset ``name`` holding ``data``, stored a random way (some of which no reader
    may follow: data in other files, rows that were never written)."""
    kind = str(rng.choice(["contiguous", "chunked", "compact", "external", "virtual", "longer"]))
    trailing = data.shape[1:]
    if kind == "compact" and data.nbytes < 60_000:
        dcpl = h5p.create(h5p.DATASET_CREATE)
        dcpl.set_layout(h5d.COMPACT)
        f.create_dataset(name, data=data, dcpl=dcpl)
    elif kind == "external":
        raw = where / f"{name.replace('/', '_')}.raw"
        raw.write_bytes(np.ascontiguousarray(data).tobytes())
        f.create_dataset(name, shape=data.shape, dtype=data.dtype, external=[(str(raw), 0, data.nbytes)])
    elif kind == "virtual":
        source = where / f"{name.replace('/', '_')}.source.h5"
        with h5py.File(source, "w") as g:
            g["data"] = data
        layout = h5py.VirtualLayout(shape=data.shape, dtype=data.dtype)
        layout[:] = h5py.VirtualSource(str(source), "data", shape=data.shape)
        f.create_virtual_dataset(name, layout)
    elif kind in ("chunked", "longer"):
        rows = int(rng.integers(1, max(2, len(data) + 1)))
        dataset = f.create_dataset(
            name, data=data, chunks=(rows, *trailing), maxshape=(None, *trailing), compression="gzip"
        )
        if kind == "longer":
            dataset.resize(len(data) + int(rng.integers(1, 10**6)), axis=0)
    else:
        f.create_dataset(name, data=data)


def _restore(files: list[Path], rng: np.random.Generator) -> None:
    shards = [p for p in files if p.suffix == ".h5"]
    path = shards[int(rng.integers(len(shards)))]
    old = hashlib.sha256(path.read_bytes()).hexdigest()
    with h5py.File(path, "r+") as f:
        names = [*(n for n in f if n != "episodes"), *(f"episodes/{n}" for n in f["episodes"])]
        name = names[int(rng.integers(len(names)))]
        data = f[name][()]
        del f[name]
        _store(f, name, data, path.parent, rng)
    if rng.random() < 0.5:  # the manifest made to match: only the shard checks can notice
        manifest = path.parent / "manifest.json"
        new = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest.write_text(manifest.read_text().replace(old, new))


DAMAGES: dict[str, Callable[[list[Path], np.random.Generator], None]] = {
    "flip": _flip,
    "truncate": _truncate,
    "swap": _swap,
    "duplicate": _duplicate,
    "delete": _delete,
    "restore": _restore,
}
WEIGHTS = np.array([0.4, 0.15, 0.1, 0.1, 0.1, 0.15])


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError("a reader hung on a damaged dataset")


def _reads(path: Path, reference: list[dict], rng: np.random.Generator) -> bool:
    """Reads the dataset with every library reader; True when all data equals ``reference``.

    Raises:
        UserError: where a reader stops with one (checked to be one line).
    """
    from airhockey.learn.data import ClipDataset, FrameDataset

    correct = True
    with open_shards(path) as episodes:
        correct &= len(episodes) == len(reference)
        for i in range(min(len(episodes), len(reference))):
            episode, expected = episodes[i], reference[i]
            for name in (*ARRAY_FIELDS, *SCALAR_FIELDS):
                correct &= np.array_equal(episode[name], expected[name])
            start, stop = (int(v) for v in rng.integers(-12, 12, size=2))
            correct &= np.array_equal(
                episodes.read(i, "puck_pos", start, stop), expected["puck_pos"][start:stop]
            )
    clips = ClipDataset(path, clip_length=4)
    frames = FrameDataset(path)
    for k in (0, len(clips) - 1):
        clips[k]
    for k in (0, len(frames) - 1):
        frames[k]
    return correct


def _assert_cli_outcome(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.exception, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.fixture(scope="module")
def reference(small_dataset) -> list[dict]:
    with open_shards(small_dataset) as episodes:
        return [{name: episode[name] for name in (*ARRAY_FIELDS, *SCALAR_FIELDS)} for episode in episodes]


def test_damaged_datasets_give_the_data_or_one_line_errors_and_never_pass_verify_with_wrong_data(
    small_dataset, reference, tmp_path
):
    rng = np.random.default_rng(2024)
    previous = signal.signal(signal.SIGALRM, _timeout)
    outcomes: dict[str, int] = {}
    try:
        for trial in range(TRIALS):
            data = tmp_path / f"trial{trial}"
            shutil.copytree(small_dataset, data)
            files = sorted(p for p in data.iterdir() if p.name[0] != ".")  # three shards and the manifest
            damage = str(rng.choice(list(DAMAGES), p=WEIGHTS))
            DAMAGES[damage](files, rng)
            signal.alarm(SECONDS_PER_TRIAL)
            try:
                try:
                    verified = verify_dataset(data).ok
                except UserError as err:
                    assert "\n" not in str(err)
                    verified = False
                try:
                    correct = _reads(data, reference, rng)
                except UserError as err:
                    assert "\n" not in str(err), err
                    assert not verified, f"trial {trial} ({damage}): verify passed, yet reading failed: {err}"
                    outcome = "user error"
                else:
                    assert correct or not verified, (
                        f"trial {trial} ({damage}): wrong data that verify accepts"
                    )
                    outcome = "correct data" if correct else "wrong data, verify fails"
                for command in ("inspect", "verify"):
                    _assert_cli_outcome(["data", command, str(data)])
            finally:
                signal.alarm(0)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            shutil.rmtree(data)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert outcomes.get("user error", 0) > TRIALS // 4, outcomes  # the damage is mostly found, not missed
