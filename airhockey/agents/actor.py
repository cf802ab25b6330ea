"""A saved agent's deterministic actor as numpy arrays, so that generation workers never import torch.

Dataset generation only needs a PPO agent's deterministic action: the observation normalised with
the VecNormalize statistics, the actor MLP's forward pass and the clip to the action bounds. Torch
and stable-baselines3 cost a worker about two seconds to import and a millisecond per batched
``predict`` call, while this forward pass of a 13-128-128-2 MLP takes tens of microseconds.
``AgentPolicy.actor()`` exports the arrays and ``agent train`` saves them beside the model
(``<name>_actor.npz``, with the SHA-256 of the files they came from); ``MLPActor.predict`` agrees
with ``AgentPolicy.predict`` to float32 rounding (the tests check 1e-5). Loading the ``.npz``
unpickles nothing (``allow_pickle=False``). This module needs numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from airhockey.errors import UserError
from airhockey.writing import atomic_file

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}
"""The hidden activations an exported actor may use, by name."""


@dataclass(frozen=True, eq=False)
class MLPActor:
    """Observation normalisation, then ``tanh``/``relu`` hidden layers, then a linear action layer.

    Picklable (plain arrays), so it travels cheaply to generation worker processes.
    """

    obs_mean: NDArray[np.float64]
    """(obs,) the normalisation's running mean."""
    obs_var: NDArray[np.float64]
    """(obs,) the normalisation's running variance."""
    clip_obs: float
    """Normalised observations are clipped to [-clip_obs, clip_obs]."""
    epsilon: float
    """Added to the variance before the square root."""
    weights: tuple[NDArray[np.float32], ...]
    """Each layer's (in, out) weight matrix, the action layer last."""
    biases: tuple[NDArray[np.float32], ...]
    """Each layer's (out,) bias."""
    activation: str
    """The hidden layers' activation, a key of ``ACTIVATIONS``."""
    action_low: NDArray[np.float32]
    """Lower bounds of the action."""
    action_high: NDArray[np.float32]
    """Upper bounds of the action."""
    name: str = ""
    """Where the agent came from, for messages."""

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {sorted(ACTIVATIONS)}")
        if len(self.weights) != len(self.biases) or not self.weights:
            raise ValueError("need one bias per weight matrix, and at least one layer")

    def predict(
        self, observation: NDArray[np.floating], deterministic: bool = True
    ) -> tuple[NDArray[np.float32], Any]:
        """(13,) or (N, 13) raw observations -> the deterministic actions (2,) or (N, 2), and None.

        ``deterministic=False`` is refused: the exported actor has no action noise.
        """
        if not deterministic:
            raise ValueError("an exported actor acts deterministically only")
        obs = np.asarray(observation, dtype=np.float64)
        if obs.shape[-1:] != self.obs_mean.shape or obs.ndim > 2:
            raise ValueError(
                f"expected an observation of shape {self.obs_mean.shape} or (N, ...), got {obs.shape}"
            )
        x = np.clip(
            (obs - self.obs_mean) / np.sqrt(self.obs_var + self.epsilon), -self.clip_obs, self.clip_obs
        )
        x = x.astype(np.float32)
        act = ACTIVATIONS[self.activation]
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            x = act(x @ w + b)
        action = x @ self.weights[-1] + self.biases[-1]
        return np.clip(action, self.action_low, self.action_high), None

    def save(self, path: str | Path, source_sha256: str) -> None:
        """Writes the arrays to ``path`` (``.npz``, replaced atomically) with the agent's identity."""
        path = Path(path)
        arrays: dict[str, Any] = {
            "obs_mean": self.obs_mean,
            "obs_var": self.obs_var,
            "clip_obs": np.float64(self.clip_obs),
            "epsilon": np.float64(self.epsilon),
            "activation": np.str_(self.activation),
            "action_low": self.action_low,
            "action_high": self.action_high,
            "source_sha256": np.str_(source_sha256),
            "layers": np.int64(len(self.weights)),
        }
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"weight_{k}"], arrays[f"bias_{k}"] = w, b
        with atomic_file(path, tmp=path.with_name("tmp_" + path.name)) as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | Path, name: str = "") -> tuple[MLPActor, str]:
        """Reads an actor written by ``save``; returns it and the SHA-256 of its agent's files.

        Raises:
            UserError: when the file is missing or not such an actor.
        """
        try:
            with np.load(path, allow_pickle=False) as f:
                layers = int(f["layers"])
                actor = cls(
                    obs_mean=f["obs_mean"],
                    obs_var=f["obs_var"],
                    clip_obs=float(f["clip_obs"]),
                    epsilon=float(f["epsilon"]),
                    weights=tuple(f[f"weight_{k}"] for k in range(layers)),
                    biases=tuple(f[f"bias_{k}"] for k in range(layers)),
                    activation=str(f["activation"]),
                    action_low=f["action_low"],
                    action_high=f["action_high"],
                    name=name or str(path),
                )
                return actor, str(f["source_sha256"])
        except Exception as err:  # any failure to read a user's file is a user error
            detail = " ".join(str(err).split())[:200]
            raise UserError(f"cannot read actor {path}: {type(err).__name__}: {detail}") from None

    def __repr__(self) -> str:
        return f"MLPActor({self.name!r})"
