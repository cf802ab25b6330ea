"""Evaluation on seeded episodes: determinism, the seed-to-episode mapping, statistics."""

from __future__ import annotations

import numpy as np
import pytest

from airhockey.agents import EVAL_SEED, evaluate, load_policy, wilson_interval
from airhockey.envs.rollout import play_episodes
from airhockey.errors import UserError


class ChasePuck:
    """A scripted predictor: drive the bar at the puck, which knocks it up the table."""

    def predict(self, obs, deterministic=True):
        obs = np.asarray(obs)
        return np.clip(10.0 * (obs[..., 4:6] - obs[..., 0:2]), -1, 1).astype(np.float32), None


def test_wilson_interval_matches_known_values():
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_evaluation_is_deterministic_for_a_seed_whatever_the_batch():
    a = evaluate(ChasePuck(), episodes=12, batch=5)
    b = evaluate(ChasePuck(), episodes=12, batch=12)
    for name in ("seeds", "targets", "hits", "lengths", "returns"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = evaluate(ChasePuck(), episodes=12, seed=EVAL_SEED + 100)
    assert not np.array_equal(a.returns, c.returns)


def test_episode_k_is_the_episode_reset_with_seed_plus_k():
    result = evaluate(ChasePuck(), episodes=6, seed=EVAL_SEED, batch=4)
    played = play_episodes(lambda obs: ChasePuck().predict(obs)[0], 6, EVAL_SEED)
    assert result.seeds.tolist() == [s.seed for s in played]
    assert result.targets.tolist() == [s.target for s in played]
    assert result.hits.tolist() == [s.hit_button for s in played]
    assert result.lengths.tolist() == [s.length for s in played]


def test_confusion_table_counts_every_episode_and_success_is_its_diagonal():
    result = evaluate(ChasePuck(), episodes=20, target_buttons="all")
    table = result.confusion()
    assert table.shape == (5, 6) and table.sum() == 20
    assert sum(table[t, t + 1] for t in range(5)) == result.successes
    assert set(result.targets.tolist()) <= set(range(5))
    low, high = result.interval
    assert low <= result.success_rate <= high
    report = result.report()
    assert "95% CI" in report and "target \\ hit" in report and "mean length" in report


def test_trained_policy_evaluation_is_deterministic(tiny_run):
    policy = load_policy(tiny_run.run_dir)
    a, b = evaluate(policy, episodes=6), evaluate(policy, episodes=6)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert set(a.targets.tolist()) <= {0, 4}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"episodes": 0}, "at least 1"),
        ({"seed": 2**31 - 2, "episodes": 5}, "training seeds start there"),
        ({"seed": -1}, "evaluation seeds must lie"),
        ({"target_buttons": "middle"}, "target_buttons must be one of"),
    ],
)
def test_bad_arguments_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        evaluate(ChasePuck(), **kwargs)


def test_a_bundled_agent_is_refused_on_targets_it_was_not_trained_for():
    with pytest.raises(
        UserError, match=r"'bundled' was trained for target buttons 'leftright'.*--policy bundled-all"
    ):
        evaluate(load_policy("bundled"), episodes=1, target_buttons="all")
    # The five-button agent covers the left and right buttons too.
    result = evaluate(load_policy("bundled-all"), episodes=2, target_buttons="leftright")
    assert set(result.targets.tolist()) <= {0, 4}
