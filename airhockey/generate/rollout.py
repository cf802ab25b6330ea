"""Playing a policy in several envs in lockstep, and replaying an episode to render its frames.

Generation plays attempts in a batch of envs that share one ``policy.predict`` call per step.
With ``record=True`` the envs render every frame as they play (all envs of a process share one GL
context, see ``airhockey.envs``), and a kept attempt's frames and per-frame state are written as
they are: one pass, the physics paid once. ``replay`` re-renders an episode from its reset seed and
actions; the tests check that it gives every stored frame back bit for bit, as the documented
replay (``gym.make(**env_kwargs)``, ``reset``, ``step``) does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

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


class AttemptPlan(NamedTuple):
    """What an attempt plays: its reset seed, its target button and which policy plays it."""

    seed: int
    target: int
    policy: int = 0
    """Index into ``play_lockstep``'s ``policies``."""


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
    policy: int = 0
    """Index of the policy that played it (``AttemptPlan.policy``)."""
    layout: int = -1
    """The env's ``layout_index`` in the episode (-1: the MJCF's buttons)."""
    factors: dict[str, float] = field(default_factory=dict)
    """The env's ``episode_factors`` after reset: the nuisances the episode drew."""


def reset_options(target: int) -> dict[str, int]:
    """The ``reset`` options that force the target button: the one place that spells them."""
    return {"target": int(target)}


def episode_kwargs(policy: Policy, envs: Sequence[Any], seeds: Sequence[int], steps: Sequence[int]) -> dict:
    """The keyword arguments of ``policy.predict`` beyond the observations, for a batch of envs.

    A policy with ``reads_layout`` gets the buttons' positions (``button_x``, (N, 5) m: the
    observation names the target, not where it is); one with ``reads_episode`` gets each env's
    episode seed and step (``seeds``, ``steps``), from which it draws its own noise.
    """
    kwargs: dict[str, Any] = {}
    if getattr(policy, "reads_layout", False):
        kwargs["button_x"] = np.stack([env.button_x for env in envs])
    if getattr(policy, "reads_episode", False):
        kwargs["seeds"], kwargs["steps"] = np.asarray(seeds), np.asarray(steps)
    return kwargs


def _act(
    policies: list[Policy], plans: list[AttemptPlan], envs: list[Any], obs: NDArray, steps: list[int]
) -> NDArray[np.float32]:
    """(N, 2) actions of the N running envs, one ``predict`` call per policy that plays any of them."""
    batch = np.empty((len(plans), 2), dtype=np.float32)
    for k, policy in enumerate(policies):
        rows = [j for j, plan in enumerate(plans) if plan.policy == k]
        if rows:
            seeds = [plans[j].seed for j in rows]
            extra = episode_kwargs(policy, [envs[j] for j in rows], seeds, [steps[j] for j in rows])
            acted, _ = policy.predict(obs[rows], deterministic=True, **extra)
            batch[rows] = np.asarray(acted, dtype=np.float32).reshape(len(rows), -1)
    return batch


def play_lockstep(
    envs: list[gym.Env],
    policies: Policy | Sequence[Policy],
    next_attempt: Callable[[], tuple[int, int] | AttemptPlan | None],
    record: bool = False,
) -> Iterator[Attempt]:
    """Plays attempts in ``envs`` in lockstep and yields each as it ends.

    Every env that is free asks ``next_attempt()`` for a ``(seed, target)`` or an
    ``AttemptPlan`` and plays it; ``None`` leaves the env idle. All running envs played by the
    same policy share one ``predict`` call per step (in the order of ``policies``). Attempts
    that end on the same step are yielded in env order, and ``next_attempt`` is called after the
    consumer has seen the attempts yielded before, so the sequence depends only on the policies,
    the envs' number and ``next_attempt``. Stop early by leaving the loop.

    The envs are stepped (``advance``) and rendered through ``env.unwrapped`` with the time limit
    of their spec applied here (Gymnasium's wrappers cost a tenth of a step), so an attempt is what
    the wrapped env gives step for step; with ``record``, frames and state go into per-env buffers.

    Args:
        envs: envs of AirHockey-v0 with state observations, as ``make_env`` makes them.
        policies: a policy, or the policies that ``AttemptPlan.policy`` indexes; each gives
            actions for a batch of observations (and what ``episode_kwargs`` adds).
        next_attempt: the next attempt's reset seed, target and policy, or None.
        record: keep every frame (``env.render()``, rendered into the buffers) and
            ``physical_state()``; the envs must be made with ``render_mode="rgb_array"``.

    Yields:
        Finished attempts, in the order they end.
    """
    n = len(envs)
    policies = list(policies) if isinstance(policies, Sequence) else [policies]
    raw = [env.unwrapped for env in envs]
    limit = envs[0].spec.max_episode_steps if envs[0].spec is not None else None
    if not limit:
        raise ValueError("play_lockstep needs envs with a time limit (gym.make's max_episode_steps)")
    obs = np.zeros((n, *envs[0].observation_space.shape))
    running: list[AttemptPlan | None] = [None] * n
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
        plan = next_attempt()
        running[i] = None if plan is None else AttemptPlan(*plan)
        if running[i] is not None:
            seed, target, _ = running[i]
            obs[i], _ = envs[i].reset(seed=seed, options=reset_options(target))
            steps[i] = 0
            if record:
                keep_state(i)
                render(i)

    for i in range(n):
        start(i)
    while any(r is not None for r in running):
        active = [i for i in range(n) if running[i] is not None]
        batch = _act(
            policies,
            [running[i] for i in active],
            [raw[i] for i in active],
            obs[active],
            [steps[i] for i in active],
        )
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
            seed, target, policy_index = running[i]
            length = steps[i]
            arrays = {name: buf[: length + 1].copy() for name, buf in buffers[i].items()} if record else None
            factors = dict(getattr(raw[i], "episode_factors", None) or {})
            played = actions[i, :length].copy()
            yield Attempt(
                seed, target, played, hit_button, arrays, policy_index, raw[i].layout_index, factors
            )
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
