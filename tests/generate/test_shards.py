"""Reading episodes: every episode-relative read is a slice of that episode's own array."""

from __future__ import annotations

import numpy as np
import pytest

from airhockey.generate import open_shards
from airhockey.generate.records import ARRAY_FIELDS


def test_reads_follow_slice_semantics_within_the_episode_for_random_start_and_stop(small_dataset):
    rng = np.random.default_rng(0)
    with open_shards(small_dataset) as episodes:
        whole = {(i, name): episodes[i][name] for i in range(len(episodes)) for name in ARRAY_FIELDS}
        for _ in range(300):
            i = int(rng.integers(-len(episodes), len(episodes)))
            name = str(rng.choice(list(ARRAY_FIELDS)))
            own = whole[(i % len(episodes), name)]
            bound = len(own) + 3
            start, stop = (
                None if rng.random() < 0.15 else int(rng.integers(-bound, bound)) for _ in range(2)
            )
            expected = own[start:stop]
            got = episodes.read(i, name, start, stop)
            assert got.dtype == expected.dtype and got.shape == expected.shape, (i, name, start, stop)
            np.testing.assert_array_equal(got, expected, err_msg=f"{i} {name} [{start}:{stop}]")
            if name == "frames":
                np.testing.assert_array_equal(episodes.frames(i, start, stop), expected)


def test_the_reported_reads_stay_inside_their_episode(small_dataset):
    with open_shards(small_dataset) as episodes:
        frames = episodes[1]["frames"]
        np.testing.assert_array_equal(episodes.frames(1, -3), frames[-3:])  # not episode 0's
        np.testing.assert_array_equal(episodes.frames(1, 0, -1), frames[:-1])
        np.testing.assert_array_equal(episodes.frames(0, -3), episodes[0]["frames"][-3:])
        assert episodes.frames(1, 5, 2).shape == (0, *frames.shape[1:])
        with pytest.raises(KeyError):
            episodes.read(1, "reward")
        with pytest.raises(IndexError):
            episodes.read(len(episodes), "frames")
