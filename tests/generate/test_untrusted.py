"""Untrusted shard files: data kept outside the file, rows the file does not hold, huge chunks,
filter plugins, links, bad attributes and shards out of order are refused before any read.

Each case rewrites shard 0 of a copy of the small dataset with real h5py (and records its new
SHA-256 in the manifest, so that only the shard checks can notice), then reads it every way a
user can: ``verify_dataset``, ``airhockey data verify``, ``open_shards`` on the directory and on
the lone file, and the learn stage's ``FrameDataset`` and ``ClipDataset``. Each must stop with
one line naming the file and the reason. Frames kept in a FIFO prove that nothing reads them: a
read would block until the test's alarm fires.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate import open_shards, verify_dataset
from airhockey.learn.data import ClipDataset, FrameDataset
from tests.generate.helpers import SMALL, rewrite_shard

runner = CliRunner()
HUGE = 2**33
"""Frames a lying shard declares."""


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Fails a test that blocks (a read of a FIFO) instead of letting it hang."""

    def fail(signum: int, frame: object) -> None:
        raise TimeoutError("a reader blocked: it read data kept outside the shard")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def data(small_dataset: Path, tmp_path: Path) -> Path:
    path = tmp_path / "data"
    shutil.copytree(small_dataset, path)
    return path


def _recreate(f: h5py.File, name: str, **kwargs) -> np.ndarray:
    """Deletes dataset ``name`` and creates it again with ``kwargs``; returns its old contents."""
    old = f[name][()]
    del f[name]
    f.create_dataset(name, **kwargs)
    return old


def _external_fifo(f: h5py.File, where: Path) -> None:
    fifo = where / "frames.fifo"
    os.mkfifo(fifo)
    shape, dtype = f["frames"].shape, f["frames"].dtype
    del f["frames"]
    f.create_dataset("frames", shape=shape, dtype=dtype, external=[(str(fifo), 0, h5py.h5f.UNLIMITED)])


def _virtual_gone(f: h5py.File, where: Path) -> None:
    shape, dtype = f["frames"].shape, f["frames"].dtype
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    layout[:] = h5py.VirtualSource(str(where / "gone.h5"), "frames", shape=shape)
    del f["frames"]
    f.create_virtual_dataset("frames", layout)


def _declares_2_33_frames(f: h5py.File, where: Path) -> None:
    """Every array declares 2^33 rows in chunks that are never written (they would read as zeros)."""
    episodes = int(f.attrs["episodes"])
    for name in [n for n in f if isinstance(f[n], h5py.Dataset)]:
        rows = HUGE - episodes if name == "actions" else HUGE
        trailing, dtype = f[name].shape[1:], f[name].dtype
        chunk = 8 if name == "frames" else 1024
        del f[name]
        f.create_dataset(
            name, shape=(rows, *trailing), maxshape=(None, *trailing), chunks=(chunk, *trailing), dtype=dtype
        )
    f.attrs["frames"] = HUGE


def _huge_chunks(f: h5py.File, where: Path) -> None:
    frames = f["frames"][()]
    trailing = frames.shape[1:]
    del f["frames"]
    f.create_dataset(
        "frames", data=frames, chunks=(8192, *trailing), maxshape=(None, *trailing), compression="gzip"
    )


def _filter_plugin(f: h5py.File, where: Path) -> None:
    rows = f["puck_pos"][()]
    del f["puck_pos"]
    dataset = f.create_dataset(
        "puck_pos",
        shape=rows.shape,
        dtype=rows.dtype,
        chunks=(1024, 2),
        maxshape=(None, 2),
        compression=32004,  # LZ4, a plugin HDF5 would look for on disk
        allow_unknown_filter=True,
    )
    padded = np.zeros((1024, 2), rows.dtype)
    padded[: len(rows)] = rows
    dataset.id.write_direct_chunk((0, 0), padded.tobytes())


def _external_link(f: h5py.File, where: Path) -> None:
    other = where / "other.h5"
    with h5py.File(other, "w") as g:
        g["bar_pos"] = f["bar_pos"][()]
    del f["bar_pos"]
    f["bar_pos"] = h5py.ExternalLink(str(other), "bar_pos")


def _soft_link(f: h5py.File, where: Path) -> None:
    del f["bar_vel"]
    f["bar_vel"] = h5py.SoftLink("/puck_vel")  # same dtype and shape: only the link gives it away


STORAGE_CASES: dict[str, tuple[Callable[[h5py.File, Path], None], str]] = {
    "external storage": (_external_fifo, "frames keeps its data in external files"),
    "virtual dataset": (_virtual_gone, "frames is a virtual dataset"),
    "2^33 frames": (_declares_2_33_frames, f"frames declares {HUGE // 8} chunks"),
    "huge chunks": (_huge_chunks, "frames has chunks of 25165824 bytes"),
    "filter plugin": (_filter_plugin, "puck_pos needs HDF5 filter 32004"),
    "external link": (_external_link, "bar_pos is a ExternalLink"),
    "soft link": (_soft_link, "bar_vel is a SoftLink"),
}


def _json_attr(name: str, change: Callable[[dict], object]) -> Callable[[h5py.File, Path], None]:
    def edit(f: h5py.File, where: Path) -> None:
        f.attrs[name] = json.dumps(change(json.loads(f.attrs[name])))

    return edit


def _attr(name: str, value: object) -> Callable[[h5py.File, Path], None]:
    def edit(f: h5py.File, where: Path) -> None:
        f.attrs[name] = value

    return edit


def _both_sizes(side: int) -> Callable[[h5py.File, Path], None]:
    """Config and env_kwargs agree on a frame size the env would try to render."""

    def edit(f: h5py.File, where: Path) -> None:
        for name in ("config", "env_kwargs"):
            value = json.loads(f.attrs[name])
            value["width"] = value["height"] = side
            f.attrs[name] = json.dumps(value)

    return edit


ATTRIBUTE_CASES: dict[str, tuple[Callable[[h5py.File, Path], None], str]] = {
    "env_kwargs with a model file": (
        _json_attr("env_kwargs", lambda kw: {**kw, "xml_file": "/etc/passwd"}),
        "attributes ['env_kwargs'] do not follow from its config",
    ),
    "huge frames": (_both_sizes(100_000), "attribute config is not a dataset's settings (width"),
    "width as text": (_json_attr("config", lambda c: {**c, "width": "32"}), "attribute config is not"),
    "negative class count": (_attr("class_counts", np.array([-1, 4])), "attribute class_counts"),
    "first episode as text": (_attr("first_episode", "0"), "['first_episode'] have the wrong type"),
    "fractional version": (_attr("format_version", 1.5), "attribute format_version is 1.5"),
    "config not JSON": (_attr("config", "{width: 32"), "attribute config is not valid JSON"),
    "missing frames count": (lambda f, where: f.attrs.__delitem__("frames"), "missing shard attributes"),
}


def assert_refused(data: Path, fragment: str) -> None:
    """Every reader stops on shard 0 with one line naming it and holding ``fragment``."""
    problems = verify_dataset(data).problems
    assert any(p.startswith("shard-00000.h5: ") and fragment in p for p in problems), problems
    result = runner.invoke(app, ["data", "verify", str(data)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert any(fragment in line for line in result.stderr.splitlines()), result.stderr
    shard = data / "shard-00000.h5"
    readers = {
        "open_shards": lambda: open_shards(data)[0]["frames"],
        "lone shard": lambda: open_shards(shard),
        "FrameDataset": lambda: FrameDataset(data),
        "ClipDataset": lambda: ClipDataset(data, clip_length=4),
    }
    for reader, read in readers.items():
        with pytest.raises(UserError) as err:
            read()
        message = str(err.value)
        assert "\n" not in message and str(shard) in message and fragment in message, (reader, message)


@pytest.mark.parametrize("case", list(STORAGE_CASES))
def test_storage_outside_the_file_or_beyond_it_is_refused_before_any_read(data, tmp_path, case):
    edit, fragment = STORAGE_CASES[case]
    rewrite_shard(data, 0, lambda f: edit(f, tmp_path))
    assert_refused(data, fragment)


def test_a_lone_lying_shard_is_small_and_refused(data, tmp_path):
    """A file of a few kilobytes declaring 2^33 frames (gigabytes of zeros if read)."""
    rewrite_shard(data, 0, lambda f: _declares_2_33_frames(f, tmp_path))
    lone = tmp_path / "lone.h5"
    with h5py.File(data / "shard-00000.h5") as f, h5py.File(lone, "w") as g:
        for name in f:
            f.copy(f[name], g, name)
        g.attrs.update(f.attrs)
    assert lone.stat().st_size < 64 * 1024
    with pytest.raises(UserError, match=r"lone\.h5: frames declares \d+ chunks"):
        open_shards(lone)


@pytest.mark.parametrize("case", list(ATTRIBUTE_CASES))
def test_shard_attributes_are_checked_before_they_reach_a_reader_or_the_env(data, tmp_path, case):
    edit, fragment = ATTRIBUTE_CASES[case]
    rewrite_shard(data, 0, lambda f: edit(f, tmp_path))
    assert_refused(data, fragment)


def _manifest(data: Path) -> dict:
    return json.loads((data / "manifest.json").read_text())


def test_a_manifest_listing_shards_out_of_order_is_refused(data):
    manifest = _manifest(data)
    manifest["shards"] = manifest["shards"][::-1]
    (data / "manifest.json").write_text(json.dumps(manifest))
    for read in (lambda: verify_dataset(data), lambda: open_shards(data), lambda: FrameDataset(data)):
        with pytest.raises(UserError, match=r"manifest\.json: field 'shards': shard index 1 listed after 2"):
            read()
    result = runner.invoke(app, ["data", "verify", str(data)])
    assert result.exit_code == 2 and "listed after" in result.stderr and "Traceback" not in result.output


def test_a_shard_under_another_shards_name_is_refused(data):
    """Shard files swapped on disk with the manifest's checksums made to match: the manifest's
    order is right, but the files' own attributes and episode ids give them away."""
    a, b = data / "shard-00000.h5", data / "shard-00001.h5"
    a.rename(data / "swap")
    b.rename(a)
    (data / "swap").rename(b)
    manifest = _manifest(data)
    first, second = manifest["shards"][:2]
    first["sha256"], second["sha256"] = second["sha256"], first["sha256"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_dataset(data).problems
    assert any(p.startswith("shard-00000.h5: attribute shard_index is 1") for p in problems), problems
    with pytest.raises(UserError, match=r"shard-00000\.h5: attribute shard_index is 1, the manifest says 0"):
        open_shards(data)[0]["frames"]


def test_shard_files_given_out_of_order_are_refused(small_dataset):
    shards = sorted(small_dataset.glob("shard-*.h5"))
    assert len(open_shards(shards)) == SMALL.episodes
    with pytest.raises(UserError, match=r"shard-00000\.h5: holds episodes from 0 on, before the end"):
        open_shards([shards[1], shards[0]])


def test_an_episode_table_numbered_against_its_attributes_is_refused(data):
    rewrite_shard(data, 1, lambda f: f.attrs.__setitem__("first_episode", 0))
    problems = verify_dataset(data).problems
    assert any("attribute first_episode is 0, the manifest says 3" in p for p in problems), problems
    with pytest.raises(
        UserError, match=r"shard-00001\.h5: damaged episode table: episodes/id is not \[0, 1, 2\]"
    ):
        open_shards([data / "shard-00001.h5"])
