"""Training environments: ``n_envs`` AirHockey-v0 copies stepped by ``workers`` processes.

stable-baselines3's SubprocVecEnv runs one environment per process. AirHockey-v0 steps in about
0.1 ms, so with eight environments on two cores the pipe round trips and context switches of
eight processes cost more than they save. ``ParallelVecEnv`` instead splits the environments into
one group per worker: the first group is stepped in this process, the others each in a worker
process, all at once; each group is an SB3 ``DummyVecEnv``, so auto-reset and ``info`` follow SB3.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

import airhockey

EnvFn = Callable[[], gym.Env]

# What stable-baselines3's PPO reads of a step's infos: Monitor's episode summary, DummyVecEnv's
# terminal observation and truncation flag, and the success flag it logs.
SB3_INFO_KEYS = ("episode", "terminal_observation", "TimeLimit.truncated", "is_success")


def _recv(conn: Connection, spin: float) -> Any:
    """``conn.recv()``, after checking for up to ``spin`` seconds without sleeping: a process that
    sleeps through the wait between two steps takes longer to wake than a step of the envs."""
    if spin > 0:
        deadline = time.perf_counter() + spin
        while not conn.poll(0) and time.perf_counter() < deadline:
            pass
    return conn.recv()


def _call(venv: DummyVecEnv, method: str, args: tuple, kwargs: dict, info_keys: Sequence[str] | None) -> Any:
    """``venv.method(*args, **kwargs)``; a step's infos keep only ``info_keys`` (all for None)."""
    result = getattr(venv, method)(*args, **kwargs)
    if method == "step" and info_keys is not None:
        obs, rewards, dones, infos = result
        result = (obs, rewards, dones, [{k: info[k] for k in info_keys if k in info} for info in infos])
    return result


def _make_env(target_buttons: str) -> gym.Env:
    return Monitor(gym.make(airhockey.ENV_ID, target_buttons=target_buttons))


def env_fns(n_envs: int, target_buttons: str) -> list[EnvFn]:
    """Picklable constructors of ``n_envs`` Monitor-wrapped AirHockey-v0 envs with state observations."""
    return [functools.partial(_make_env, target_buttons) for _ in range(n_envs)]


def training_venv(n_envs: int, target_buttons: str, workers: int) -> ParallelVecEnv:
    """The training environments as ``airhockey agent train`` steps them: only the infos PPO reads
    come back from workers, and each end of a worker's pipe spins for up to 1 ms before sleeping
    (on the 2-core machine, 16 envs: 1.39x the steps/s of 1 worker, against 1.10x without)."""
    return ParallelVecEnv(env_fns(n_envs, target_buttons), workers, info_keys=SB3_INFO_KEYS, spin=1e-3)


def _worker(
    remote: Connection,
    parent_remote: Connection,
    fns: list[EnvFn],
    info_keys: Sequence[str] | None,
    spin: float,
) -> None:
    """Serves one group: calls a DummyVecEnv method per message and answers with its result."""
    parent_remote.close()
    venv = DummyVecEnv(fns)
    while True:
        try:
            method, args, kwargs = _recv(remote, spin)
        except (EOFError, KeyboardInterrupt):
            break
        if method == "close":
            venv.close()
            remote.close()
            break
        try:
            result = _call(venv, method, args, kwargs, info_keys)
        except Exception as err:  # handed to the parent, which re-raises it
            remote.send((err, None))
            continue
        # Auto-resets are the only steps that change reset_infos: a step sends them only then.
        changed = method != "step" or result[2].any()
        remote.send((result, venv.reset_infos if changed else None))


class _RemoteGroup:
    """The parent's handle on a group of environments served by ``_worker`` in another process."""

    def __init__(
        self, fns: list[EnvFn], ctx: mp.context.BaseContext, info_keys: Sequence[str] | None, spin: float
    ) -> None:
        self.remote, work_remote = ctx.Pipe()
        self.spin = spin
        self.process = ctx.Process(
            target=_worker, args=(work_remote, self.remote, fns, info_keys, spin), daemon=True
        )
        self.process.start()
        work_remote.close()
        self.reset_infos: list[dict[str, Any]] = []

    def send(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.remote.send((method, args, kwargs))

    def receive(self) -> Any:
        result, reset_infos = _recv(self.remote, self.spin)
        if isinstance(result, Exception):
            raise result
        if reset_infos is not None:
            self.reset_infos = reset_infos
        return result

    def close(self) -> None:
        self.remote.send(("close", (), {}))
        self.process.join()
        self.remote.close()


class _LocalGroup:
    """A group stepped in this process, with the same send/receive interface as ``_RemoteGroup``."""

    def __init__(self, fns: list[EnvFn], info_keys: Sequence[str] | None) -> None:
        self.venv = DummyVecEnv(fns)
        self.info_keys = info_keys
        self._pending: tuple[str, tuple, dict] | None = None

    @property
    def reset_infos(self) -> list[dict[str, Any]]:
        return self.venv.reset_infos

    def send(self, method: str, *args: Any, **kwargs: Any) -> None:
        self._pending = (method, args, kwargs)

    def receive(self) -> Any:
        assert self._pending is not None
        method, args, kwargs = self._pending
        self._pending = None
        return _call(self.venv, method, args, kwargs, self.info_keys)

    def close(self) -> None:
        self.venv.close()


class ParallelVecEnv(VecEnv):
    """``len(fns)`` environments in ``workers`` groups: one in this process, the rest in workers.

    For environments with Box observations, like AirHockey-v0's state.

    Environment ``i`` is the same whatever ``workers`` is (seeding gives it ``seed + i``), so a
    training run's numbers do not depend on how its environments are spread over processes.

    Args:
        fns: environment constructors, picklable (see ``env_fns``).
        workers: processes that step environments, this one included; 1 runs all of them here.
        start_method: how worker processes start; default ``"forkserver"`` where the platform has
            it, else ``"spawn"`` (``"fork"`` is unsafe once torch has started its threads).
        info_keys: the keys of each step's infos to return (``SB3_INFO_KEYS``: what PPO reads);
            None returns them whole. Workers then pickle only these, which costs less than
            stepping the environments (all of AirHockey-v0's keys: ~20 us per env and step).
        spin: seconds each end of a worker's pipe checks for the next message before it sleeps.
    """

    def __init__(
        self,
        fns: Sequence[EnvFn],
        workers: int,
        start_method: str | None = None,
        info_keys: Sequence[str] | None = None,
        spin: float = 0.0,
    ) -> None:
        if not 1 <= workers <= len(fns):
            raise ValueError(f"workers must be between 1 and the number of envs ({len(fns)}), got {workers}")
        bounds = [round(len(fns) * k / workers) for k in range(workers + 1)]
        self._slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(start_method)
        # Workers start first, so that they build their environments while this process builds its own.
        keys = None if info_keys is None else tuple(info_keys)
        remote = [_RemoteGroup(list(fns[part]), ctx, keys, spin) for part in self._slices[1:]]
        local = _LocalGroup(list(fns[self._slices[0]]), keys)
        self._groups: list[_LocalGroup | _RemoteGroup] = [local, *remote]
        super().__init__(len(fns), local.venv.observation_space, local.venv.action_space)
        self._actions: np.ndarray | None = None
        self.closed = False

    def _call(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Calls ``method`` on every group's DummyVecEnv at once; returns the results in group order."""
        for group in self._groups:
            group.send(method, *args, **kwargs)
        # The local group runs inside its receive(), while the workers run theirs.
        return [group.receive() for group in self._groups]

    def _gather_reset_infos(self) -> None:
        self.reset_infos = [info for group in self._groups for info in group.reset_infos]

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        if seed is None:
            return [None] * self.num_envs
        for group, part in zip(self._groups, self._slices, strict=True):
            group.send("seed", seed + part.start)
            group.receive()
        return [seed + i for i in range(self.num_envs)]

    def set_options(self, options: list[dict] | dict | None = None) -> None:
        if not isinstance(options, list):
            options = [options or {}] * self.num_envs
        for group, part in zip(self._groups, self._slices, strict=True):
            group.send("set_options", options[part])
            group.receive()

    def reset(self) -> VecEnvObs:
        obs = self._call("reset")
        self._gather_reset_infos()
        return np.concatenate(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None
        for group, part in zip(self._groups, self._slices, strict=True):
            group.send("step", self._actions[part])
        results = [group.receive() for group in self._groups]
        self._actions = None
        self._gather_reset_infos()
        obs, rewards, dones, infos = zip(*results, strict=True)
        return (
            np.concatenate(obs),
            np.concatenate(rewards),
            np.concatenate(dones),
            [info for group_infos in infos for info in group_infos],
        )

    def close(self) -> None:
        if self.closed:
            return
        for group in self._groups:
            group.close()
        self.closed = True

    def _per_group(self, method: str, indices: VecEnvIndices, *args: Any, **kwargs: Any) -> list[Any]:
        """Calls a DummyVecEnv method that takes ``indices`` on the groups holding those envs."""
        wanted = list(self._get_indices(indices))
        out: list[Any] = []
        for group, part in zip(self._groups, self._slices, strict=True):
            local = [i - part.start for i in wanted if part.start <= i < part.stop]
            if local:
                group.send(method, *args, indices=local, **kwargs)
                out.extend(group.receive() or [])
        return out

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._per_group("get_attr", indices, attr_name)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._per_group("set_attr", indices, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        return self._per_group("env_method", indices, method_name, *method_args, **method_kwargs)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._per_group("env_is_wrapped", indices, wrapper_class)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return self.env_method("render")
