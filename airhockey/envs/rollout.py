"""Playing episodes of AirHockey-v0 with a policy, for previews and recordings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

import airhockey

Policy = Callable[[NDArray[np.float64]], NDArray[np.float32]]


@dataclass
class EpisodeSummary:
    """What happened in one played episode."""

    seed: int
    """The env reset seed."""
    target: int
    """The target button."""
    hit_button: int
    """The button hit, or -1."""
    length: int
    """Number of steps taken."""
    frames: list[NDArray[np.uint8]] = field(default_factory=list)
    """Rendered frames, (H, W, 3) each, the first after reset; empty unless rendering."""


def random_policy(action_space: gym.spaces.Box, seed: int) -> Policy:
    """A policy that samples uniform random actions from its own seeded generator."""
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(action_space.low, action_space.high).astype(np.float32)


def play_episodes(
    policy: Policy,
    episodes: int,
    seed: int,
    render: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> list[EpisodeSummary]:
    """Plays ``episodes`` episodes of AirHockey-v0 with reset seeds ``seed, seed+1, ...``.

    Args:
        policy: maps a state observation to an action.
        episodes: how many episodes.
        seed: the first reset seed.
        render: keep the rendered frame of every step.
        env_kwargs: extra keyword arguments for ``gym.make``.

    Returns:
        One summary per episode.
    """
    kwargs = dict(env_kwargs or {})
    if render:
        kwargs.setdefault("render_mode", "rgb_array")
    env = gym.make(airhockey.ENV_ID, **kwargs)
    summaries = []
    try:
        for k in range(episodes):
            obs, info = env.reset(seed=seed + k)
            frames = [env.render()] if render else []
            done, length = False, 0
            while not done:
                obs, _, terminated, truncated, info = env.step(policy(obs))
                length += 1
                done = terminated or truncated
                if render:
                    frames.append(env.render())
            summaries.append(EpisodeSummary(seed + k, info["target"], info["hit_button"], length, frames))
    finally:
        env.close()
    return summaries
