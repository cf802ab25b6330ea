"""Writers never follow a link planted in an output folder, and a full disk ends in one line saying so."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from airhockey.agents import runlog
from airhockey.errors import UserError
from airhockey.generate import generate
from airhockey.generate.hdf5 import ShardWriter, atomic_write_bytes
from airhockey.jsonio import write_json
from airhockey.learn.methods.next_frame import NextFrame
from airhockey.learn.pretext.checkpoint import save_checkpoint
from airhockey.learn.pretext.trainer import train_pretext
from airhockey.writing import open_append
from tests.learn.tiny import DATA, MODEL, PRETEXT, tiny_runs

SECRET = "outside the folder: must not change\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside every output folder that planted links point to."""
    path = tmp_path / "elsewhere" / "secret.txt"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


def plant(folder: Path, name: str, target: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    link.symlink_to(target)
    return link


@pytest.mark.parametrize("name", ["results.json.tmp", "results.json"])
def test_write_json_replaces_a_planted_link_without_following_it(
    tmp_path: Path, outside: Path, name: str
) -> None:
    plant(tmp_path / "out", name, outside)
    write_json(tmp_path / "out" / "results.json", {"a": 1})
    assert outside.read_text() == SECRET
    assert not (tmp_path / "out" / "results.json").is_symlink()
    assert not (tmp_path / "out" / "results.json.tmp").exists()


@pytest.mark.parametrize(
    ("name", "video"),
    [
        ("clip.tmp.gif", "clip.gif"),
        ("clip.gif", "clip.gif"),
        ("clip.tmp.mp4", "clip.mp4"),
        ("clip.mp4", "clip.mp4"),
    ],
)
def test_videos_never_follow_a_planted_link(tmp_path: Path, outside: Path, name: str, video: str) -> None:
    from airhockey.video import write_video

    plant(tmp_path / "out", name, outside)
    frames = [np.full((16, 16, 3), 40 * t, np.uint8) for t in range(4)]
    write_video(frames, tmp_path / "out" / video, fps=10)
    assert outside.read_text() == SECRET
    written = tmp_path / "out" / video
    assert written.is_file() and not written.is_symlink() and written.stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [video]


@pytest.mark.parametrize("name", ["last.pt.tmp", "last.pt"])
def test_checkpoints_never_follow_a_planted_link(tmp_path: Path, outside: Path, name: str) -> None:
    plant(tmp_path / "run", name, outside)
    save_checkpoint(tmp_path / "run" / "last.pt", {"kind": "pretext", "model": {"w": torch.zeros(3)}})
    assert outside.read_text() == SECRET


@pytest.mark.parametrize("name", ["runs.jsonl", "eval.csv"])
def test_appending_to_a_planted_log_link_is_refused_naming_it(
    tmp_path: Path, outside: Path, name: str
) -> None:
    link = plant(tmp_path / "out", name, outside)
    row = runlog.EvalRow(64, 1.0, 0.5, 0.1, 0.9, 1.0, 10.0)
    with pytest.raises(UserError, match=f"{link}: .*symbolic link"):
        if name == "eval.csv":
            runlog.append_row(link, row)
        else:
            with open_append(link) as f:
                f.write("{}\n")
    assert outside.read_text() == SECRET


def test_appending_creates_the_header_once(tmp_path: Path) -> None:
    row = runlog.EvalRow(64, 1.0, 0.5, 0.1, 0.9, 1.0, 10.0)
    runlog.append_row(tmp_path / "eval.csv", row)
    runlog.append_row(tmp_path / "eval.csv", dataclasses.replace(row, timesteps=128))
    assert [r.timesteps for r in runlog.read_rows(tmp_path / "eval.csv")] == [64, 128]


@pytest.mark.parametrize("name", ["last.pt.tmp", "best.pt.tmp", "config.json.tmp", "log.csv.tmp"])
def test_a_pretext_run_never_follows_a_planted_temporary_file(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, outside: Path, name: str
) -> None:
    runs = tiny_runs(tmp_path_factory)
    out = tmp_path / "run"
    plant(out, name, outside)
    config = dataclasses.replace(PRETEXT, steps=1, epochs=None)
    train_pretext(runs.data, out, NextFrame(MODEL), config, progress=False)
    assert outside.read_text() == SECRET
    assert (out / "metrics.json").is_file()


def test_a_pretext_run_never_appends_to_a_planted_log(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, outside: Path
) -> None:
    runs = tiny_runs(tmp_path_factory)
    out = tmp_path / "run"
    plant(out, "log.csv", outside)
    with pytest.raises(UserError):
        train_pretext(runs.data, out, NextFrame(MODEL), PRETEXT, progress=False)
    assert outside.read_text() == SECRET


def test_generate_refuses_a_planted_lock_and_a_folder_of_dot_entries(tmp_path: Path, outside: Path) -> None:
    config = dataclasses.replace(DATA, episodes=2, shard_size=2)
    plant(tmp_path / "locked", ".lock", outside)
    with pytest.raises(UserError, match=r"\.lock: the lock file is a symbolic link"):
        generate(config, tmp_path / "locked", workers=1, progress=False)
    (tmp_path / "dotted").mkdir()
    (tmp_path / "dotted" / ".hidden").write_text("a user's file")
    with pytest.raises(UserError, match="is not empty"):
        generate(config, tmp_path / "dotted", workers=1, progress=False)
    assert outside.read_text() == SECRET


def test_shard_partial_files_never_follow_a_planted_link(tmp_path: Path, outside: Path) -> None:
    plant(tmp_path / "data", ".shard-00000.h5.partial", outside)
    with ShardWriter(tmp_path / "data" / "shard-00000.h5") as writer:
        writer.finish({})
    plant(tmp_path / "data", ".shard-00001.h5.partial", outside)
    atomic_write_bytes(tmp_path / "data" / "shard-00001.h5", b"bytes")
    assert outside.read_text() == SECRET
    assert (tmp_path / "data" / "shard-00001.h5").read_bytes() == b"bytes"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (skipped where this process may not mount one)."""
    where = tmp_path / "small"
    where.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(full_disk: Path) -> None:
    (full_disk / "metrics.json").write_text("{}\n")
    big = np.zeros(200_000, np.float32)
    with pytest.raises(UserError, match=r"checkpoint\.pt: the disk is full"):
        save_checkpoint(
            full_disk / "checkpoint.pt", {"kind": "pretext", "model": {"w": torch.from_numpy(big)}}
        )
    with pytest.raises(UserError, match=r"metrics\.json: the disk is full"):
        write_json(full_disk / "metrics.json", {"values": [1.5] * 50_000})
    assert sorted(p.name for p in full_disk.iterdir()) == ["metrics.json"]
    assert (full_disk / "metrics.json").read_text() == "{}\n"  # the old contents stay
    with (
        pytest.raises(UserError, match=r"runs\.jsonl: the disk is full"),
        open_append(full_disk / "runs.jsonl") as f,
    ):
        f.write("x" * 200_000)
