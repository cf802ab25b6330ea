"""Playing a policy in several envs in lockstep, and replaying an episode to render its frames.

Generation plays attempts in a batch of envs that share one ``policy.predict`` call per step.
With ``record=True`` the envs render every frame as they play (all envs of a process share one GL
context, see ``airhockey.envs``), and a kept attempt's frames and per-frame state are written as
they are: one pass, the physics paid once. ``replay`` re-renders an episode from its reset seed and
actions; the tests check that it gives every stored frame back bit for bit, as the documented
replay (``gym.make(**env_kwargs)``, ``reset``, ``step``) does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

import airhockey


class Policy(Protocol):
    """What generation needs of a policy: stable-baselines3's ``predict`` on a batch."""

    def predict(
        self, observation: NDArray[np.float64], deterministic: bool = True
    ) -> tuple[NDArray[np.float32], Any]:
        """(N, 13) state observations -> ((N, 2) actions, recurrent state or None)."""
        ...


@dataclass
class Attempt:
    """One episode played on state observations, not yet rendered."""

    seed: int
    """The env reset seed."""
    target: int
    """The target button, forced at reset."""
    actions: NDArray[np.float32]
    """(T - 1, 2) the actions passed to ``env.step``."""
    hit_button: int
    """The button hit, or -1."""
    arrays: dict[str, NDArray] | None = None
    """With ``record``: ``frames`` (T, H, W, 3) uint8 and the ``physical_state()`` fields, (T, ...)."""


def reset_options(target: int) -> dict[str, int]:
    """The ``reset`` options that force the target button: the one place that spells them."""
    return {"target": int(target)}


def play_lockstep(
    envs: list[gym.Env],
    policy: Policy,
    next_attempt: Callable[[], tuple[int, int] | None],
    record: bool = False,
) -> Iterator[Attempt]:
    """Plays attempts in ``envs`` in lockstep and yields each as it ends.

    Every env that is free asks ``next_attempt()`` for a ``(seed, target)`` and plays it; ``None``
    leaves the env idle. All running envs share one ``policy.predict`` call per step. Attempts
    that end on the same step are yielded in env order, and ``next_attempt`` is called after the
    consumer has seen the attempts yielded before, so the sequence depends only on the policy,
    the envs' number and ``next_attempt``. Stop early by leaving the loop.

    The envs are stepped (``advance``: ``step`` without the reward and ``info``) and rendered
    through ``env.unwrapped`` with the time limit of their spec applied here (Gymnasium's
    wrappers cost about a tenth of a step), so an attempt is what the wrapped env gives step for
    step; with ``record``, frames and state go straight into per-env buffers of the longest
    episode.

    Args:
        envs: envs of AirHockey-v0 with state observations, as ``make_env`` makes them.
        policy: gives actions for a batch of observations.
        next_attempt: the next attempt's reset seed and target, or None.
        record: keep every frame (``env.render()``, rendered into the buffers) and
            ``physical_state()``; the envs must be made with ``render_mode="rgb_array"``.

    Yields:
        Finished attempts, in the order they end.
    """
    n = len(envs)
    raw = [env.unwrapped for env in envs]
    limit = envs[0].spec.max_episode_steps if envs[0].spec is not None else None
    if not limit:
        raise ValueError("play_lockstep needs envs with a time limit (gym.make's max_episode_steps)")
    obs = np.zeros((n, *envs[0].observation_space.shape))
    running: list[tuple[int, int] | None] = [None] * n
    actions = np.zeros((n, limit, *envs[0].action_space.shape), dtype=np.float32)
    steps = [0] * n
    buffers: list[dict[str, NDArray]] = [{} for _ in range(n)]

    def keep_state(i: int) -> None:
        t = steps[i]
        for name, value in raw[i].physical_state().items():
            if name not in buffers[i]:  # the first frame fixes each field's shape and dtype
                buffers[i][name] = np.empty((limit + 1, *value.shape), dtype=value.dtype)
            buffers[i][name][t] = value

    def render(i: int) -> None:
        if "frames" not in buffers[i]:
            buffers[i]["frames"] = np.empty((limit + 1, raw[i].height, raw[i].width, 3), dtype=np.uint8)
        raw[i].render_into(buffers[i]["frames"][steps[i]])

    def start(i: int) -> None:
        running[i] = next_attempt()
        if running[i] is not None:
            seed, target = running[i]
            obs[i], _ = envs[i].reset(seed=seed, options=reset_options(target))
            steps[i] = 0
            if record:
                keep_state(i)
                render(i)

    for i in range(n):
        start(i)
    while any(r is not None for r in running):
        active = [i for i in range(n) if running[i] is not None]
        batch, _ = policy.predict(obs[active], deterministic=True)
        batch = np.asarray(batch, dtype=np.float32).reshape(len(active), -1)
        ended = []
        for i, action in zip(active, batch, strict=True):
            obs[i], terminated = raw[i].advance(action)
            actions[i, steps[i]] = action
            steps[i] += 1
            if record:
                keep_state(i)
            if terminated or steps[i] == limit:
                ended.append((i, raw[i].hit_button))
        if record:
            # All envs step, then all render: interleaving the two costs 6-11% more per frame, as
            # physics and rasterizer evict each other's code and data from the CPU caches.
            for i in active:
                render(i)
        for i, hit_button in ended:
            seed, target = running[i]
            length = steps[i]
            arrays = {name: buf[: length + 1].copy() for name, buf in buffers[i].items()} if record else None
            yield Attempt(seed, target, actions[i, :length].copy(), hit_button, arrays)
            start(i)


def replay(
    env: gym.Env, seed: int, target: int, actions: NDArray[np.float32]
) -> tuple[dict[str, NDArray], dict[str, Any]]:
    """Replays an episode in a rendering env and records its frames and per-frame state.

    Args:
        env: AirHockey-v0 made with ``render_mode="rgb_array"``.
        seed: the reset seed.
        target: the target button.
        actions: (T - 1, 2) actions.

    Returns:
        ``(arrays, info)``: ``frames`` (T, H, W, 3) uint8 and the fields of ``physical_state()``,
        each stacked to (T, ...); and the ``info`` of the last step.
    """
    _, info = env.reset(seed=seed, options=reset_options(target))
    length = len(actions) + 1
    arrays: dict[str, NDArray] = {}
    for t in range(length):
        if t > 0:
            _, _, _, _, info = env.step(actions[t - 1])
        for name, value in {"frames": env.render(), **env.unwrapped.physical_state()}.items():
            if t == 0:  # the first frame fixes each field's shape: fill (T, ...) arrays in place
                arrays[name] = np.empty((length, *value.shape), dtype=value.dtype)
            arrays[name][t] = value
    return arrays, info


def make_env(env_kwargs: dict[str, Any]) -> gym.Env:
    """``gym.make`` of AirHockey-v0 with the given keyword arguments."""
    return gym.make(airhockey.ENV_ID, **env_kwargs)
