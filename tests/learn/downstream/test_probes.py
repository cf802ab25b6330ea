"""Probes recover a planted linear signal and not noise; the oracle reads what k frames can show."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from airhockey.generate import open_shards
from airhockey.generate.config import ShapesConfig
from airhockey.generate.shapes import generate_shapes
from airhockey.learn.config import CompareConfig
from airhockey.learn.downstream.labelled import POSITIONS, FrameSet, load_frames
from airhockey.learn.downstream.probes import VELOCITIES, boosting_accuracy, oracle_features, probe_r2
from airhockey.learn.protocol.compare import compare_on_dataset
from tests.learn.tiny import SCHEDULE

PUCK = ("puck_x", "puck_y", "puck_vx", "puck_vy")


def test_a_ridge_probe_recovers_a_planted_linear_signal_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 40))
    state = rng.normal(size=(600, 8))  # unrelated to x ...
    w = rng.normal(size=(40, 2))
    state[:, [0, 4]] = x @ w + 0.05 * rng.normal(size=(600, 2))  # ... but bar_x and puck_x are linear in it
    r2 = probe_r2(x[:400], state[:400], x[400:], state[400:], POSITIONS + VELOCITIES)
    assert set(r2) == {"bar_x", "bar_y", "puck_x", "puck_y", "puck_vx", "puck_vy"}
    assert r2["bar_x"] > 0.99 and r2["puck_x"] > 0.99
    assert r2["bar_y"] < 0.1 and r2["puck_vx"] < 0.1


def test_the_oracle_reads_positions_from_one_frame_and_velocities_from_two():
    state = np.arange(24, dtype=np.float32).reshape(3, 8)
    frames = FrameSet(
        source=np.zeros((3, 2, 2, 3), np.uint8),
        pos=np.arange(3),
        label=np.zeros(3, np.int64),
        episode=np.zeros(3, np.int64),
        frame_index=np.arange(3),
        hit_frame=np.full(3, 3),
        strike_frame=np.full(3, 1),
        state=state,
    )
    assert oracle_features(frames, 1).tolist() == state[:, [0, 1, 4, 5]].tolist()
    assert oracle_features(frames, 4).tolist() == state.tolist()


def test_boosted_trees_learn_a_threshold_and_survive_one_class():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(300, 3))
    y = (x[:, 1] > 0.2).astype(np.int64)
    assert boosting_accuracy(x[:200], y[:200], x[200:], y[200:], seed=0).mean() > 0.95
    assert boosting_accuracy(x[:10], np.ones(10, np.int64), x[:5], np.ones(5, np.int64), seed=0).all()


@pytest.fixture(scope="module")
def one_shape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny one-shape ``data shapes`` set: its second shape's state (bar_*) is NaN throughout."""
    path = tmp_path_factory.mktemp("shapes") / "data"
    generate_shapes(ShapesConfig(episodes=20, length=10, width=32, height=32, radius=(3.0, 4.0)), path)
    return path


def test_a_one_shape_set_leaves_the_absent_shape_out_of_the_oracle_and_the_probes(one_shape):
    frames = load_frames(open_shards(one_shape), np.arange(20))
    assert np.isnan(frames.state[:, :4]).all() and frames.state_columns == (4, 5, 6, 7)
    assert frames.select(frames.frame_index < 3).state_columns == (4, 5, 6, 7)
    assert oracle_features(frames, 1).tolist() == frames.state[:, [4, 5]].tolist()
    assert oracle_features(frames, 2).tolist() == frames.state[:, 4:].tolist()
    x = np.random.default_rng(0).normal(size=(len(frames), 6))
    r2 = probe_r2(x[:100], frames.state[:100], x[100:], frames.state[100:], POSITIONS + VELOCITIES)
    assert set(r2) == set(PUCK) and all(math.isfinite(v) for v in r2.values())


def test_learn_compare_reads_a_one_shape_set(one_shape, tmp_path):
    config = CompareConfig(budgets=(4,), repeats=2, training=SCHEDULE, hidden=8)
    compare_on_dataset(one_shape, [], tmp_path / "report", config, progress=False)
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert set(results["probes"]["scratch"]) == set(PUCK)
    for oracle in results["oracle"]:
        assert 0.0 <= oracle["head"]["accuracy_mean"] <= 1.0
        assert 0.0 <= oracle["boosting"]["accuracy_mean"] <= 1.0
    assert (tmp_path / "report" / "report.md").is_file()
