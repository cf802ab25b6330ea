"""Evaluating an agent on seeded AirHockey-v0 episodes: success rate, confusion table, lengths.

Episode ``k`` of an evaluation is reset with seed ``seed + k``. Training resets its environments
with seeds from ``TRAIN_SEED_BASE`` (2**31) up, so evaluation seeds below it are never trained on:
``EVAL_SEED`` (the default, 1,000,000 up) for final results and ``VALIDATION_SEED`` (900,000 up)
for the evaluations made during training.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

import airhockey
from airhockey.agents.config import EVAL_SEED, TRAIN_SEED_BASE
from airhockey.agents.policy import AgentPolicy, one_torch_thread
from airhockey.envs import N_BUTTONS, resolve_target_buttons
from airhockey.errors import UserError


class Predictor(Protocol):
    """Anything that acts like an SB3 model on batches of raw state observations (N, 13)."""

    def predict(self, obs: NDArray[np.floating], deterministic: bool = True) -> tuple[NDArray, Any]: ...


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; 95% for the default ``z``.

    Returns:
        (low, high), both in [0, 1]; (0, 1) when there are no trials.
    """
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class EvalResult:
    """The outcome of an evaluation; per-episode arrays are in seed order."""

    seeds: NDArray[np.int64]
    """Reset seed of each episode, shape (E,)."""
    targets: NDArray[np.int64]
    """Target button of each episode (0-4), shape (E,)."""
    hits: NDArray[np.int64]
    """Button hit in each episode (0-4, or -1 for none), shape (E,)."""
    lengths: NDArray[np.int64]
    """Steps in each episode, shape (E,)."""
    returns: NDArray[np.float64]
    """Undiscounted sum of the env's rewards in each episode, shape (E,)."""

    @property
    def episodes(self) -> int:
        return len(self.seeds)

    @property
    def successes(self) -> int:
        return int(np.sum(self.hits == self.targets))

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson interval of the success rate."""
        return wilson_interval(self.successes, self.episodes)

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.lengths))

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    def confusion(self) -> NDArray[np.int64]:
        """Episode counts, shape (5, 6): row = target button 0-4, column = hit button -1 (none), 0-4."""
        table = np.zeros((N_BUTTONS, N_BUTTONS + 1), dtype=np.int64)
        np.add.at(table, (self.targets, self.hits + 1), 1)
        return table

    def report(self) -> str:
        """A few lines for a terminal: success rate with its interval, the confusion table, lengths."""
        low, high = self.interval
        lines = [
            f"episodes:        {self.episodes} (seeds {self.seeds[0]}-{self.seeds[-1]})",
            f"success rate:    {self.success_rate:.1%} ({self.successes}/{self.episodes}), "
            f"95% CI [{low:.1%}, {high:.1%}]",
            f"mean length:     {self.mean_length:.1f} steps",
            f"mean return:     {self.mean_return:.2f}",
            "",
            "target \\ hit    none" + "".join(f"{b:>6}" for b in range(N_BUTTONS)),
        ]
        for target, row in enumerate(self.confusion()):
            if row.sum():
                lines.append(f"{target:>12}  " + "".join(f"{n:>6}" for n in row))
        return "\n".join(lines)


def evaluate(
    policy: Predictor,
    episodes: int = 100,
    seed: int = EVAL_SEED,
    target_buttons: str = "leftright",
    batch: int = 32,
) -> EvalResult:
    """Plays ``episodes`` episodes with reset seeds ``seed, seed + 1, ...``, acting deterministically.

    ``batch`` environments run side by side so that the policy acts on a batch of observations;
    when one finishes it is reset with the next seed. The result depends only on the policy and the
    arguments.

    Args:
        policy: acts on raw state observations of shape (N, 13), e.g. ``load_policy(...)``.
        episodes: how many episodes.
        seed: the first reset seed; all must lie below ``TRAIN_SEED_BASE``.
        target_buttons: the env's ``target_buttons`` (``"leftright"`` or ``"all"``).
        batch: environments stepped together.

    Raises:
        UserError: on a bad episode count, seed or target preset, or for an ``AgentPolicy`` known to be
            trained for fewer target buttons than ``target_buttons`` (``AgentPolicy.check_targets``).
    """
    if episodes < 1:
        raise UserError(f"episodes must be at least 1, got {episodes}")
    if seed < 0 or seed + episodes > TRAIN_SEED_BASE:
        raise UserError(f"evaluation seeds must lie in [0, {TRAIN_SEED_BASE}); training seeds start there")
    try:
        resolve_target_buttons(target_buttons)
    except ValueError as err:
        raise UserError(str(err)) from None
    if isinstance(policy, AgentPolicy):
        policy.check_targets(target_buttons)

    seeds = np.arange(seed, seed + episodes, dtype=np.int64)
    targets, hits, lengths = (np.zeros(episodes, dtype=np.int64) for _ in range(3))
    returns = np.zeros(episodes)
    with contextlib.ExitStack() as stack, one_torch_thread():
        envs = [
            stack.enter_context(contextlib.closing(gym.make(airhockey.ENV_ID, target_buttons=target_buttons)))
            for _ in range(min(batch, episodes))
        ]
        obs = np.zeros((len(envs), envs[0].observation_space.shape[0]))  # (batch, 13)
        episode_of = np.full(len(envs), -1)  # the episode each env plays; -1 once none are left
        started = 0

        def start(i: int) -> None:
            nonlocal started
            if started < episodes:
                obs[i], info = envs[i].reset(seed=int(seeds[started]))
                targets[started] = info["target"]
                episode_of[i], started = started, started + 1
            else:
                episode_of[i] = -1

        for i in range(len(envs)):
            start(i)
        while (active := np.flatnonzero(episode_of >= 0)).size:
            actions, _ = policy.predict(obs[active], deterministic=True)
            for i, action in zip(active, actions, strict=True):
                k = episode_of[i]
                obs[i], reward, terminated, truncated, info = envs[i].step(action)
                lengths[k] += 1
                returns[k] += reward
                if terminated or truncated:
                    hits[k] = info["hit_button"]
                    start(i)
    return EvalResult(seeds, targets, hits, lengths, returns)
