"""The shard writer's layouts: every one reads back exactly, with h5py alone."""

from __future__ import annotations

import sys
from dataclasses import fields

import h5py
import numpy as np
import pytest

from airhockey.errors import UserError
from airhockey.generate import EpisodeRecord, open_shards
from airhockey.generate.hdf5 import FRAME_LAYOUT, FrameLayout, ShardWriter


@pytest.fixture(scope="module")
def records(small_dataset) -> list[EpisodeRecord]:
    """The small dataset's episodes, and the first one cut to 5 frames: 341 frames in all, so that
    no layout's last chunk is full."""
    names = [f.name for f in fields(EpisodeRecord) if f.name != "factors"]  # none without nuisances
    with open_shards(small_dataset) as episodes:
        out = [EpisodeRecord(**{k: episodes[i][k] for k in names}) for i in range(len(episodes))]
    first = out[0]
    cut = {f.name: getattr(first, f.name) for f in fields(EpisodeRecord)}
    cut.update({name: value[:5] for name, value in first.arrays().items()}, actions=first.actions[:4])
    return [*out, EpisodeRecord(**cut)]


@pytest.mark.parametrize(
    "layout",
    [
        FRAME_LAYOUT,
        FrameLayout("gzip", 0, 3, deflater="isal"),
        FrameLayout("gzip", 1, 8, deflater="hdf5"),
        FrameLayout("lzf", None, 8),
        FrameLayout(None, None, 5),
    ],
    ids=lambda layout: f"{layout.compression}-{layout.level}-{layout.frames_per_chunk}-{layout.deflater}",
)
def test_every_layout_reads_back_exactly_with_plain_h5py(records, tmp_path, layout):
    path = tmp_path / "shard.h5"
    with ShardWriter(path, layout) as writer:
        for record in records:
            writer.add(record)
        writer.finish({})
    total = sum(len(r.frames) for r in records)
    assert total % layout.frames_per_chunk != 0  # the last chunk is partly filled
    with h5py.File(path, "r") as f:
        assert f["frames"].compression == layout.compression
        assert f["frames"].chunks[0] == layout.frames_per_chunk
        for name in ("frames", "bar_pos", "puck_vel", "buttons_lit", "actions"):
            np.testing.assert_array_equal(f[name][()], np.concatenate([getattr(r, name) for r in records]))
        if layout.compression is not None:
            assert f["frames"].id.get_storage_size() < f["frames"].nbytes / 5


def test_isal_levels_are_checked():
    with pytest.raises(ValueError, match="levels are 0-3"):
        FrameLayout("gzip", 6, 8, deflater="isal")
    with pytest.raises(ValueError, match="deflater must be one of"):
        FrameLayout("gzip", 1, 8, deflater="zstd")


def test_writing_without_isal_is_a_one_line_error_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "isal", None)  # as if it were not installed
    with pytest.raises(UserError, match="needs the 'isal' package"):
        ShardWriter(tmp_path / "shard.h5")
    assert list(tmp_path.iterdir()) == []
    ShardWriter(tmp_path / "shard.h5", FrameLayout("gzip", 1, 8, deflater="hdf5")).finish({})
    assert (tmp_path / "shard.h5").is_file()
