"""Loading saved agents and acting on raw AirHockey-v0 observations (files: ``airhockey.agents.files``).

A saved agent is two files: a stable-baselines3 PPO model zip and, beside it, the VecNormalize
statistics it was trained with (``<name>.zip`` and ``<name>_vecnormalize.pkl``). Loading either
unpickles Python objects, which can run arbitrary code: load only files you trust, from paths you
give. The package never loads a policy from anywhere but such a path or its own bundled files.
"""

from __future__ import annotations

import contextlib
import math
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from airhockey.agents.actor import MLPActor
from airhockey.agents.files import (
    BUNDLED,
    BUNDLED_ALL,
    BUNDLED_MODEL,
    BUNDLED_MODELS,
    MODEL_FILE,
    PolicyFiles,
    find_policy_files,
    stats_path,
)
from airhockey.envs.airhockey_v0 import STATE_SIZE, resolve_target_buttons
from airhockey.errors import UserError

__all__ = [
    "BUNDLED",
    "BUNDLED_ALL",
    "BUNDLED_MODEL",
    "BUNDLED_MODELS",
    "BUNDLED_TARGETS",
    "MODEL_FILE",
    "AgentPolicy",
    "PolicyFiles",
    "find_policy_files",
    "load_policy",
    "one_torch_thread",
    "stats_path",
]

BUNDLED_TARGETS = {BUNDLED: "leftright", BUNDLED_ALL: "all"}
"""The target preset each bundled agent was trained for."""


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Runs the block with torch on one intra-op thread, then restores the previous setting.

    The agent's small MLPs gain little from more; on a busy machine, threads that wait for a core
    made a batch of 64 observations five times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class AgentPolicy:
    """A PPO model with its observation normalisation, acting on raw AirHockey-v0 state observations.

    Args:
        model: the trained model.
        normalizer: the VecNormalize whose observation statistics the model was trained with; it is
            only read (its statistics are not updated), so a training run's own may be passed.
        name: where the policy came from, for messages.
        sha256: the identity of its files (``PolicyFiles.sha256``), or None when not from files.
        target_buttons: the target preset it was trained for, where known (the bundled agents);
            None where not known.
    """

    def __init__(
        self,
        model: PPO,
        normalizer: VecNormalize,
        name: str,
        sha256: str | None = None,
        target_buttons: str | None = None,
    ) -> None:
        self.model = model
        self.normalizer = normalizer
        self.name = name
        self.sha256 = sha256
        self.target_buttons = target_buttons

    def check_targets(self, target_buttons: str) -> None:
        """Checks that the agent was trained for every button of ``target_buttons``, where that is known.

        Raises:
            UserError: when it was trained for fewer buttons (the left/right agent on five targets
                would hit the wrong button on most episodes of the other three).
        """
        if self.target_buttons is None:
            return
        trained = resolve_target_buttons(self.target_buttons)
        if not set(resolve_target_buttons(target_buttons)) <= set(trained):
            fits = [name for name, preset in BUNDLED_TARGETS.items() if preset == target_buttons]
            instead = f"pass --policy {fits[0]}, or " if fits else ""
            raise UserError(
                f"policy {self.name!r} was trained for target buttons {self.target_buttons!r} "
                f"(buttons {list(trained)}), not {target_buttons!r}: {instead}leave --policy out to take "
                "the agent trained for --targets"
            )

    def predict(
        self, obs: NDArray[np.floating], deterministic: bool = True
    ) -> tuple[NDArray[np.float32], Any]:
        """Acts on one observation of shape (13,) or a batch of shape (N, 13).

        Runs torch on one thread: for this small MLP, more threads only wait for cores that the
        envs and the renderer need (on 2 cores they made dataset generation 1.7x slower).

        Returns:
            The action, shape (2,) or (N, 2), clipped to [-1, 1]; and the recurrent state (None),
            as ``stable_baselines3`` models return.
        """
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape[-1:] != (STATE_SIZE,) or obs.ndim > 2:
            raise ValueError(f"expected an observation of shape (13,) or (N, 13), got {obs.shape}")
        with one_torch_thread():
            return self.model.predict(self.normalizer.normalize_obs(obs), deterministic=deterministic)

    def actor(self) -> MLPActor:
        """The deterministic actor as numpy arrays (``MLPActor``), for workers that skip torch.

        Raises:
            UserError: when the policy is not a plain MLP with tanh or ReLU activations.
        """
        policy = self.model.policy
        layers = [*policy.mlp_extractor.policy_net, policy.action_net]
        linear = [m for m in layers if isinstance(m, torch.nn.Linear)]
        kinds = {type(m) for m in layers} - {torch.nn.Linear}
        names = {torch.nn.Tanh: "tanh", torch.nn.ReLU: "relu"}
        if len(kinds) > 1 or not kinds <= set(names) or getattr(policy, "squash_output", False):
            raise UserError(
                f"policy {self.name} is not a plain tanh/ReLU MLP; it cannot be exported to numpy"
            )
        rms, space, norm = self.normalizer.obs_rms, self.model.action_space, self.normalizer
        return MLPActor(
            # Without observation normalisation, an identity scaling: mean 0, variance 1, no clip.
            obs_mean=np.array(rms.mean, np.float64) if norm.norm_obs else np.zeros(STATE_SIZE),
            obs_var=np.array(rms.var, np.float64) if norm.norm_obs else np.ones(STATE_SIZE),
            clip_obs=float(norm.clip_obs) if norm.norm_obs else math.inf,
            epsilon=float(norm.epsilon) if norm.norm_obs else 0.0,
            weights=tuple(m.weight.detach().cpu().numpy().T.astype(np.float32).copy() for m in linear),
            biases=tuple(m.bias.detach().cpu().numpy().astype(np.float32).copy() for m in linear),
            activation=names[kinds.pop()] if kinds else "tanh",
            action_low=space.low.astype(np.float32),
            action_high=space.high.astype(np.float32),
            name=self.name,
        )

    def __repr__(self) -> str:
        return f"AgentPolicy({self.name!r})"


def load_policy(policy: str | Path = BUNDLED, device: str = "cpu") -> AgentPolicy:
    """Loads a saved agent that acts on raw AirHockey-v0 state observations.

    Loading unpickles the files, which can run code: pass only paths you trust.

    Args:
        policy: ``"bundled"`` or ``"bundled-all"`` (the agents shipped in ``airhockey/assets/``, trained
            for target buttons ``leftright`` and ``all``), a training run folder
            (its final ``model.zip``) or a model zip with its ``_vecnormalize.pkl`` beside it.
        device: torch device for the network.

    Returns:
        An object with ``predict(obs, deterministic=True) -> (action, state)``.

    Raises:
        UserError: when a file is missing, corrupt, or not an AirHockey-v0 state policy.
    """
    files = find_policy_files(policy)
    try:
        model = PPO.load(files.model, device=device)
    except Exception as err:  # any failure to read a user's file is a user error
        raise UserError(_unreadable(files.model, "a stable-baselines3 PPO model zip", err)) from None
    try:
        with files.stats.open("rb") as f:
            normalizer = pickle.load(f)  # what VecNormalize.load does, without needing an env
    except Exception as err:
        raise UserError(_unreadable(files.stats, "pickled VecNormalize statistics", err)) from None
    if not isinstance(normalizer, VecNormalize):
        kind = type(normalizer).__name__
        raise UserError(f"cannot load policy: {files.stats} holds a {kind}, not VecNormalize statistics")
    if model.observation_space.shape != (STATE_SIZE,):
        raise UserError(
            f"cannot load policy {files.model}: it observes shape {model.observation_space.shape}, "
            f"not the ({STATE_SIZE},) AirHockey-v0 state"
        )
    name = str(policy) if str(policy) in BUNDLED_MODELS else str(files.model)
    return AgentPolicy(model, normalizer, name, files.sha256(), BUNDLED_TARGETS.get(str(policy)))


def _unreadable(path: Path, what: str, err: Exception) -> str:
    detail = " ".join(str(err).split())[:200]
    return f"cannot load policy: {path} is not {what} ({type(err).__name__}: {detail})"
