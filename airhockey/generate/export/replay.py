"""Replaying stored episodes for export: what the shards hold, completed with what only the env knows.

The shards hold frames, actions, per-frame state and (from format 2) the contact events, but not
the env's observations, rewards, terminations, truncations or ``info``. Each episode is replayed
from its stored reset seed and target with the stored actions in ``AirHockey-v0`` made with the
dataset's ``env_kwargs`` (``obs_type="state_pixels"``, so the frame is part of the observation),
and the replay must give back every stored frame and every stored per-frame array bit for bit,
or the export stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

import airhockey
from airhockey.errors import UserError
from airhockey.generate.records import ARRAY_FIELDS, SCALAR_FIELDS
from airhockey.generate.rollout import reset_options
from airhockey.generate.shards import EpisodeShards

PHYSICAL_FIELDS = tuple(
    name for name, (_, _, per) in ARRAY_FIELDS.items() if per == "frame" and name != "frames"
)
"""The per-frame arrays of ``physical_state()`` (positions, velocities, lit buttons, events)."""


@dataclass
class ReplayedEpisode:
    """One stored episode with what its replay adds. T is its number of frames, T - 1 of steps."""

    scalars: dict[str, int]
    """``records.SCALAR_FIELDS`` (id, label, hit_button, target, hit_frame, strike_frame, seed) and
    ``length`` (T)."""
    frames: NDArray[np.uint8]
    """(T, H, W, 3) the stored frames, equal to the replay's pixel observations."""
    states: NDArray[np.float64]
    """(T, 13) the env's state observations (``STATE_LAYOUT``: clipped to the observation bounds)."""
    physical: dict[str, NDArray]
    """``PHYSICAL_FIELDS``, each (T, ...): bar and puck positions (m) and velocities (m/s), lit
    buttons (T, 5) and the contact events (T,)."""
    actions: NDArray[np.float32]
    """(T - 1, 2) the stored actions."""
    rewards: NDArray[np.float64]
    """(T - 1,) the reward of each step."""
    terminations: NDArray[np.bool_]
    """(T - 1,) whether the env terminated at each step (a button hit, or a miss)."""
    truncations: NDArray[np.bool_]
    """(T - 1,) whether the time limit truncated the episode at each step."""
    infos: dict[str, NDArray]
    """The env's ``info`` of the reset and of every step, each key stacked to (T, ...): hit_button,
    target, is_success, buttons_lit, struck, the events and the ``reward_<term>`` of each term (0 at
    the reset)."""


def export_env(env_kwargs: dict[str, Any]) -> gym.Env:
    """AirHockey-v0 as the dataset was rendered, observing the state and the frame (a Dict space
    with ``state`` (13,) float64 and ``pixels`` (H, W, 3) uint8): the env an exported dataset names."""
    return gym.make(airhockey.ENV_ID, **{**env_kwargs, "obs_type": "state_pixels"})


def frames_per_second(env: gym.Env) -> float:
    """Frames per second of an episode: one frame per control step of ``env.unwrapped.dt`` seconds."""
    return 1.0 / float(env.unwrapped.dt)


def replay_episode(env: gym.Env, episodes: EpisodeShards, index: int) -> ReplayedEpisode:
    """Replays episode ``index`` of ``episodes`` in ``env`` (``export_env``) and checks it.

    Raises:
        UserError: when the replay does not give back a stored frame or per-frame array exactly
            (naming the episode, the array and the first frame that differs).
    """
    stored = episodes[index]
    scalars = {
        **{name: int(stored[name]) for name in SCALAR_FIELDS},
        "length": episodes.info(index)["length"],
    }
    actions = stored["actions"]
    obs, info = env.reset(seed=scalars["seed"], options=reset_options(scalars["target"]))
    info = {k: v for k, v in info.items() if k != "episode_factors"}  # per episode, stored apart
    observations, infos, physical = [obs], [info], [env.unwrapped.physical_state()]
    rewards, terminations, truncations = [], [], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        infos.append(info)
        physical.append(env.unwrapped.physical_state())
        rewards.append(reward)
        terminations.append(terminated)
        truncations.append(truncated)
    replayed = {**_stack(observations), **_stack(physical)}
    replayed["frames"] = replayed.pop("pixels")
    for name in ("frames", *PHYSICAL_FIELDS):
        if name in stored:  # format 1 shards store no events: the replay's are exported
            _check_equal(episodes, scalars["id"], name, stored[name], replayed[name])
    return ReplayedEpisode(
        scalars=scalars,
        frames=replayed["frames"],
        states=replayed["state"],
        physical={name: replayed[name] for name in PHYSICAL_FIELDS},
        actions=actions,
        rewards=np.array(rewards, dtype=np.float64),
        terminations=np.array(terminations, dtype=bool),
        truncations=np.array(truncations, dtype=bool),
        infos=_stack(infos),
    )


def _check_equal(
    episodes: EpisodeShards, episode: int, name: str, stored: NDArray, replayed: NDArray
) -> None:
    """Raises a one-line ``UserError`` unless the stored and replayed (T, ...) arrays are equal."""
    if stored.shape == replayed.shape and np.array_equal(stored, replayed):
        return
    if stored.shape != replayed.shape:
        where = f"{len(replayed)} frames for {len(stored)}"
    else:
        differs = (stored != replayed).reshape(len(stored), -1).any(axis=1)
        where = f"first differs at frame {int(np.flatnonzero(differs)[0])}"
    raise UserError(
        f"episode {episode}: its replay does not give back its stored {name} ({where}): the dataset "
        f"was written by airhockey {episodes.attrs.get('package_version', '?')}, this is "
        f"{airhockey.__version__}; export it with the version that wrote it"
    )


def _stack(rows: Sequence[dict[str, Any]]) -> dict[str, NDArray]:
    """A list of dicts with the same keys -> one dict of arrays stacked along a new first axis."""
    return {key: np.stack([np.asarray(row[key]) for row in rows]) for key in rows[0]}
