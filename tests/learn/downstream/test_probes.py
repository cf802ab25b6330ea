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
from airhockey.learn.downstream.probes import (
    RIDGE_ALPHAS,
    VELOCITIES,
    boosting_accuracy,
    oracle_features,
    probe_r2,
    ridge_loo,
)
from airhockey.learn.protocol.compare import compare_on_dataset
from tests.learn.tiny import SCHEDULE, tiny_runs

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


@pytest.mark.parametrize("frames", [30, 90], ids=["fewer-frames-than-features", "more-frames-than-features"])
def test_the_eigen_solver_gives_ridgecvs_penalty_and_r2_on_either_shape(frames):
    from sklearn.linear_model import RidgeCV

    rng = np.random.default_rng(1)
    x = rng.normal(size=(frames + 40, 60)).astype(np.float32)
    x[:, 5] = 3.0  # a constant feature: standardised to 0
    state = rng.normal(size=(frames + 40, 8))
    state[:, POSITIONS] += x[:, :4] @ rng.normal(size=(4, 4))
    train, test = slice(0, frames), slice(frames, None)
    columns = POSITIONS + VELOCITIES
    eigen = probe_r2(x[train], state[train], x[test], state[test], columns)
    ridgecv = probe_r2(x[train], state[train], x[test], state[test], columns, solver="ridgecv")
    assert eigen.keys() == ridgecv.keys()
    assert all(abs(eigen[name] - ridgecv[name]) < 1e-6 for name in eigen)
    xs = (x[train] - x[train].mean(0)) / np.where(x[train].std(0) > 0, x[train].std(0), 1.0)
    reference = RidgeCV(alphas=RIDGE_ALPHAS).fit(xs, state[train][:, columns])
    coef, intercept, alpha = ridge_loo(xs, state[train][:, columns], RIDGE_ALPHAS)
    assert alpha == reference.alpha_
    assert np.allclose(coef, reference.coef_.T, atol=1e-6) and np.allclose(intercept, reference.intercept_)


def test_the_penalty_follows_the_noise():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 20))
    clean = x @ rng.normal(size=(20, 1)) + 0.01 * rng.normal(size=(200, 1))
    assert ridge_loo(x, clean, RIDGE_ALPHAS)[2] == RIDGE_ALPHAS[0]
    assert ridge_loo(x, rng.normal(size=(200, 1)), RIDGE_ALPHAS)[2] == RIDGE_ALPHAS[-1]


def test_an_unknown_solver_is_refused():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="probe solver"):
        probe_r2(x, np.zeros((4, 8)), x, np.zeros((4, 8)), POSITIONS, solver="lsqr")


def test_the_probes_run_as_tasks_give_the_results_of_the_driver(tmp_path_factory, tmp_path):
    runs = tiny_runs(tmp_path_factory)
    config = CompareConfig(
        budgets=(2,), repeats=2, training=SCHEDULE, hidden=8, after_hit_effect=False, oracle=False
    )
    here = compare_on_dataset(runs.data, [runs.pretext], tmp_path / "here", config, progress=False)
    pool = compare_on_dataset(runs.data, [runs.pretext], tmp_path / "pool", config, workers=2, progress=False)
    assert here.probes is not None and list(here.probes) == ["scratch", "pretext"]
    assert list(here.probes["scratch"]) == ["bar_x", "bar_y", "puck_x", "puck_y", "puck_vx", "puck_vy"]
    assert here.probes == pool.probes
    assert here.probes["scratch"] != here.probes["pretext"]


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
