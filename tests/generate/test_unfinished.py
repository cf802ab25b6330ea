"""A shard still being written is reported as not finished, not as a damaged file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate import open_shards, verify_dataset

runner = CliRunner()
HOLD = """
import sys, h5py
f = h5py.File(sys.argv[1], "r+")
print("open", flush=True)
sys.stdin.readline()
"""
"""A writer that opens a shard for writing and holds it until told to stop."""
DIE = """
import os, sys, h5py
f = h5py.File(sys.argv[1], "r+")
f.flush()
os._exit(0)
"""
"""A writer that dies with the shard open for writing (HDF5's consistency flags stay set)."""


@pytest.fixture
def data(small_dataset: Path, tmp_path: Path) -> Path:
    path = tmp_path / "data"
    shutil.copytree(small_dataset, path)
    return path


def assert_not_finished(data: Path, reason: str) -> None:
    shard = data / "shard-00000.h5"
    for read in (lambda: open_shards(shard), lambda: open_shards(data)[0]["frames"]):
        with pytest.raises(UserError) as err:
            read()
        message = str(err.value)
        assert message.startswith(f"{shard}: not finished: {reason}"), message
        assert "\n" not in message and "corrupt" not in message
    problems = verify_dataset(data).problems
    assert any(p.startswith(f"shard-00000.h5: not finished: {reason}") for p in problems), problems


def test_a_shard_held_open_by_a_writing_process_is_reported_as_being_written(data):
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data / "shard-00000.h5")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "open"
        # HDF5's file lock, or without locking its consistency flags, tells the reader.
        try:
            assert_not_finished(data, "another process holds it open for writing")
        except AssertionError:
            assert_not_finished(data, "its writer still has it open")
    finally:
        writer.communicate("\n", timeout=30)
    assert verify_dataset(data).ok  # once the writer has closed it, the shard reads again


def test_a_shard_whose_writer_died_is_reported_as_not_finished(data):
    subprocess.run([sys.executable, "-c", DIE, str(data / "shard-00000.h5")], check=True, timeout=60)
    assert_not_finished(data, "its writer still has it open, or stopped before closing it")
    result = runner.invoke(app, ["data", "verify", str(data)])
    assert result.exit_code == 1 and "not finished" in result.stderr and "corrupt" not in result.stderr


def test_a_shard_open_for_writing_in_this_process_is_reported_as_being_written(data):
    with h5py.File(data / "shard-00000.h5", "r+"):
        assert_not_finished(data, "this process holds it open for writing")
    assert verify_dataset(data).ok


def test_a_partial_file_is_reported_as_being_written(small_dataset, tmp_path):
    partial = tmp_path / ".shard-00000.h5.partial"
    shutil.copyfile(small_dataset / "shard-00000.h5", partial)
    with pytest.raises(
        UserError, match=r"\.partial: not finished: a \.partial file is a shard being written"
    ):
        open_shards(partial)
