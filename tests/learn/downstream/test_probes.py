"""Probes recover a planted linear signal and not noise; the oracle reads what k frames can show."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from airhockey.generate import open_shards
from airhockey.generate.config import ShapesConfig
from airhockey.generate.shapes import generate_shapes
from airhockey.learn.config import ClassifyConfig, CompareConfig
from airhockey.learn.downstream.labelled import POSITIONS, FrameSet, load_frames
from airhockey.learn.downstream.probes import (
    RIDGE_ALPHAS,
    TREE_MIN_LEAF,
    VELOCITIES,
    fit_boosting,
    fit_state_head,
    oracle_features,
    probe_r2,
    ridge_loo,
    tree_min_leaf,
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
    assert here.probes is not None and list(here.probes) == ["scratch", "practitioner", "pretext"]
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


def separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) state-like features and (n,) classes split by a plane with a margin around it."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(4 * n, 4))
    side = x @ np.array([1.0, -0.7, 0.5, 0.3])
    keep = np.flatnonzero(np.abs(side) > 0.15)[:n]
    return x[keep], (side[keep] > 0).astype(np.int64)


def test_the_oracle_head_converges_on_separable_state():
    x, y = separable(400, 0)
    val_x, val_y = separable(200, 1)
    test_x, test_y = separable(1000, 2)
    schedule = ClassifyConfig(epochs=200, batch_size=64, min_epoch_frames=512, seed=3)
    fit = fit_state_head(x, y, test_x, schedule, 64, 2, val_x, val_y, patience=20)
    assert (fit.predicted == test_y).mean() >= 0.99
    assert fit.val_accuracy >= 0.99 and 1 <= fit.chosen <= 200
    again = fit_state_head(x, y, test_x, schedule, 64, 2, val_x, val_y, patience=20)
    assert again.chosen == fit.chosen and (again.predicted == fit.predicted).all()  # same seed, same fit
    # Without validation frames: the whole fixed schedule, long enough to converge as well.
    fixed = fit_state_head(x, y, test_x, dataclasses.replace(schedule, epochs=60), 64, 2)
    assert (
        fixed.chosen == 60 and math.isnan(fixed.val_accuracy) and (fixed.predicted == test_y).mean() >= 0.99
    )


def test_the_oracle_head_stops_once_validation_stops_improving():
    x, _ = separable(200, 0)
    noise = np.random.default_rng(4).integers(0, 2, 300)  # labels nothing predicts
    schedule = ClassifyConfig(epochs=200, batch_size=64, min_epoch_frames=256, seed=0)
    fit = fit_state_head(x[:100], noise[:100], x[100:], schedule, 16, 2, x[:100], noise[100:200], patience=5)
    assert fit.chosen < 195  # its best epoch was more than ``patience`` epochs before the last


def test_boosted_trees_learn_a_threshold_choose_their_leaf_on_validation_and_survive_one_class():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(600, 4))
    y = (x[:, 1] > 0.2).astype(np.int64)
    x[:, 1] += np.where(y == 1, 0.05, -0.05)  # linearly separable, with a margin
    fit = fit_boosting(x[:300], y[:300], x[400:], 0, x[300:400], y[300:400])
    assert (fit.predicted == y[400:]).mean() >= 0.99 and fit.val_accuracy >= 0.99
    assert fit.chosen in TREE_MIN_LEAF
    again = fit_boosting(x[:300], y[:300], x[400:], 0, x[300:400], y[300:400])
    assert again.chosen == fit.chosen and (again.predicted == fit.predicted).all()
    one = fit_boosting(x[:10], np.ones(10, np.int64), x[:5], 0)
    assert (one.predicted == 1).all() and math.isnan(one.val_accuracy)


def test_boosted_trees_split_the_frames_of_two_labelled_episodes():
    """Two episodes, one per class, of about 15 frames each: scikit-learn's default leaf of 20
    frames allows no split (one class everywhere); the leaf size for so few frames does."""
    rng = np.random.default_rng(0)
    first, second = (
        rng.normal([0.2, 0.3, -0.1, 0.0], 0.05, (15, 4)),
        rng.normal([0.5, 0.1, 0.2, 0.1], 0.05, (15, 4)),
    )
    x, y = np.concatenate([first, second]), np.repeat(np.arange(2), 15)
    test_x = np.concatenate([first + 0.01, second - 0.01])
    assert tree_min_leaf(len(y)) < 15
    fit = fit_boosting(x, y, test_x, seed=0)  # no validation frames at 2 episodes
    assert set(fit.predicted.tolist()) == {0, 1}
    assert (fit.predicted == y).mean() >= 0.9


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
        assert oracle["ceiling"]["accuracy_mean"] == oracle[oracle["ceiling_model"]]["accuracy_mean"]
    assert (tmp_path / "report" / "report.md").is_file()
