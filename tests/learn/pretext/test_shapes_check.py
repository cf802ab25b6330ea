"""The moving-shapes rollout check: centroids of the drawn shape, and a run's rollouts scored against them."""

from __future__ import annotations

import numpy as np
import pytest

from airhockey.generate import open_shards
from airhockey.generate.shapes import ShapesConfig, generate_shapes
from airhockey.learn.config import EncoderConfig, PretextConfig
from airhockey.learn.data import frames_to_tensor
from airhockey.learn.methods.next_frame import NextFrame, NextFrameConfig
from airhockey.learn.pretext.shapes_check import check_rollouts, shape_centres
from airhockey.learn.pretext.trainer import train_pretext

SHAPES = ShapesConfig(episodes=20, length=12, width=32, height=32, radius=(3.0, 4.0), shard_size=10)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("shapes") / "data"
    generate_shapes(SHAPES, path)
    return path


def test_the_centroid_of_the_drawn_shape_is_its_stored_position(shapes):
    with open_shards(shapes) as episodes:
        frames, truth = frames_to_tensor(episodes.frames(3)), episodes[3]["puck_pos"]
    np.testing.assert_allclose(shape_centres(frames), truth, atol=0.5)
    assert np.isnan(shape_centres(frames[:1] * 0)).all()  # no shape: no centre


def test_a_runs_rollouts_are_scored_against_the_stored_positions(shapes, tmp_path):
    encoder = EncoderConfig(image_size=(32, 32), stem_channels=(4,), hidden_channels=4)
    method = NextFrame(NextFrameConfig(encoder=encoder, frames_in=3, mean_frame_clips=4))
    train_pretext(shapes, tmp_path / "run", method, PretextConfig(epochs=None, steps=1), progress=False)
    result = check_rollouts(str(tmp_path / "run"), str(shapes), steps=3, context=5, stride=4)
    # 2 validation episodes of 12 frames: contexts ending at frames 4 and 8 in each.
    assert result.clips == 4 and 0 <= result.within <= 1 and len(result.mean_error) == 3
    # An untrained model about copies the last frame: the shape lags by about its speed per step.
    assert result.mean_error[0] < result.mean_error[2]
