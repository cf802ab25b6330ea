"""The episode record and the shard schema: one place that says what an episode holds.

Every stored episode has the per-frame and per-step arrays of ``ARRAY_FIELDS`` and the scalars of
``SCALAR_FIELDS``. With T frames, frames[0] is the frame after reset and frames[t] the frame after
action t, so there are T - 1 actions; the per-frame state arrays are aligned with the frames, and
the per-frame events say what happened in the physics steps between frame t - 1 and frame t.

Format 1 shards lack the events and ``strike_frame`` (``EVENTS_VERSION``); shards before format 3
(``EPISODE_FACTORS_VERSION``) lack the per-episode ``policy``, ``layout`` and ``factors``.
``stored_fields`` says what a shard of each version holds; readers derive ``strike_frame`` for
format 1 (``first_motion_frame``) and give older shards ``OLD_SCALARS``' values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from airhockey.envs import EVENTS, N_BUTTONS

FORMAT = "airhockey-episodes"
"""The value of the ``format`` attribute of every shard and of the manifest."""
FORMAT_VERSION = 3
"""Bumped whenever the layout changes in a way an old reader would misread."""
EVENTS_VERSION = 2
"""The format version that added the per-frame contact ``EVENTS`` and ``strike_frame``."""
EPISODE_FACTORS_VERSION = 3
"""The format version that added each episode's ``policy``, ``layout`` and nuisance ``factors``."""

# name -> (dtype, trailing shape, per "frame" (T rows) or per "step" (T - 1 rows)).
ARRAY_FIELDS: dict[str, tuple[np.dtype, tuple[int, ...], str]] = {
    "frames": (np.dtype(np.uint8), (), "frame"),  # trailing shape (H, W, 3), set by the dataset
    "actions": (np.dtype(np.float32), (2,), "step"),
    "bar_pos": (np.dtype(np.float64), (2,), "frame"),
    "bar_vel": (np.dtype(np.float64), (2,), "frame"),
    "puck_pos": (np.dtype(np.float64), (2,), "frame"),
    "puck_vel": (np.dtype(np.float64), (2,), "frame"),
    "buttons_lit": (np.dtype(bool), (N_BUTTONS,), "frame"),
    **{name: (np.dtype(bool), (), "frame") for name in EVENTS},  # bar_contact, rim_contact, button_contact
}
SCALAR_FIELDS = (
    "id",
    "label",
    "hit_button",
    "target",
    "hit_frame",
    "strike_frame",
    "seed",
    "policy",
    "layout",
)
"""Per-episode integers, stored as (E,) arrays under the shard's ``episodes`` group."""
OLD_SCALARS = {"policy": 0, "layout": -1}
"""The values of the scalars that shards before ``EPISODE_FACTORS_VERSION`` lack: their one
policy played every episode, on the MJCF's buttons."""
FACTORS = "factors"
"""The (E, K) float64 array under ``episodes`` of each episode's nuisance factors (format 3 on),
one column per name of the shard's ``factor_names`` attribute."""
EPISODES_GROUP = "episodes"
"""The shard's group of per-episode arrays."""
INDEX_FIELDS = ("frame_start", "step_start", "length")
"""Per-episode arrays under ``/episodes`` that locate each episode's rows."""
JSON_ATTRS = ("env_kwargs", "policy", "config", "discards", "factor_names")
"""Shard attributes stored as JSON text (the others are numbers, strings or arrays)."""


def stored_fields(version: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The array and scalar fields that a shard of format ``version`` stores.

    Returns:
        ``(arrays, scalars)``: names of ``ARRAY_FIELDS`` and ``SCALAR_FIELDS``, in their order;
        before ``EVENTS_VERSION`` without the events and ``strike_frame``.
    """
    scalars = SCALAR_FIELDS if version >= EPISODE_FACTORS_VERSION else SCALAR_FIELDS[: -len(OLD_SCALARS)]
    if version >= EVENTS_VERSION:
        return tuple(ARRAY_FIELDS), scalars
    return (
        tuple(name for name in ARRAY_FIELDS if name not in EVENTS),
        tuple(name for name in scalars if name != "strike_frame"),
    )


def flat_factors(factors: dict[str, Any]) -> dict[str, float]:
    """An env's ``episode_factors`` as named floats: an array value ``v`` of name ``n`` becomes
    ``n[0]``, ``n[1]``, ... (in C order)."""
    out = {}
    for name, value in factors.items():
        values = np.asarray(value, dtype=np.float64)
        if values.ndim == 0:
            out[name] = float(values)
        else:
            out.update({f"{name}[{i}]": float(v) for i, v in enumerate(values.ravel())})
    return out


LABEL_MODES: dict[str, tuple[int, ...]] = {"leftright": (0, N_BUTTONS - 1), "all": tuple(range(N_BUTTONS))}
"""Label mode -> the button each class stands for: class k is a hit of button LABEL_MODES[mode][k]."""
LABEL_NAMES: dict[str, tuple[str, ...]] = {
    "leftright": ("left", "right"),
    "all": tuple(f"button{k}" for k in range(N_BUTTONS)),
}


def label_of_button(mode: str, hit_button: int) -> int | None:
    """The class of an episode that hit ``hit_button`` (-1 for none), or None when it has no class."""
    buttons = LABEL_MODES[mode]
    return buttons.index(hit_button) if hit_button in buttons else None


def first_lit_frame(buttons_lit: NDArray[np.bool_]) -> tuple[int, int]:
    """The first frame where a button is lit and that button, from per-frame states (T, 5).

    Returns:
        ``(hit_frame, hit_button)``, or ``(-1, -1)`` when no button is ever lit.
    """
    lit_frames = np.flatnonzero(buttons_lit.any(axis=1))
    if lit_frames.size == 0:
        return -1, -1
    frame = int(lit_frames[0])
    return frame, int(np.flatnonzero(buttons_lit[frame])[0])


def first_frame(flags: NDArray[np.bool_]) -> int:
    """The first frame whose flag is set, from per-frame flags (T,), or -1 when none is.

    ``first_frame(bar_contact)`` is an episode's ``strike_frame``: the first frame at or after the
    bar's first contact with the puck.
    """
    frames = np.flatnonzero(flags)
    return int(frames[0]) if frames.size else -1


def first_motion_frame(puck_vel: NDArray[np.float64]) -> int:
    """The first frame in which the puck moves, from its (T, 2) velocities, or -1: ``strike_frame``
    as derived for format 1 shards, which did not record contacts.

    An approximation: the puck rests until the bar first touches it, and the contact's force acts
    in the physics steps that lead to the frame of the contact, so both are the same frame unless
    a contact pushes with no force at all. On datasets that store both they agreed for every
    episode checked (tests/generate/test_events.py).
    """
    return first_frame((puck_vel != 0).any(axis=1))


@dataclass
class EpisodeRecord:
    """One played, rendered and labelled episode, as written to a shard."""

    id: int
    """Position of the episode in the whole dataset (0-based)."""
    seed: int
    """The env reset seed."""
    target: int
    """The target button the policy was given (0-4)."""
    hit_button: int
    """The button the puck hit (0-4), or -1."""
    hit_frame: int
    """Index of the first frame in which a button is lit, or -1."""
    strike_frame: int
    """Index of the first frame at or after the bar's first contact with the puck, or -1."""
    label: int
    """The class, from ``hit_button`` (see ``LABEL_MODES``)."""
    frames: NDArray[np.uint8]
    """(T, H, W, 3) rendered frames."""
    actions: NDArray[np.float32]
    """(T - 1, 2) actions, exactly as passed to ``env.step``."""
    bar_pos: NDArray[np.float64]
    """(T, 2) bar centre (m)."""
    bar_vel: NDArray[np.float64]
    """(T, 2) bar velocity (m/s)."""
    puck_pos: NDArray[np.float64]
    """(T, 2) puck centre (m)."""
    puck_vel: NDArray[np.float64]
    """(T, 2) puck velocity (m/s)."""
    buttons_lit: NDArray[np.bool_]
    """(T, 5) which buttons are lit in each frame."""
    bar_contact: NDArray[np.bool_]
    """(T,) whether the bar touched the puck in the physics steps since the previous frame."""
    rim_contact: NDArray[np.bool_]
    """(T,) whether the puck touched a rim in the physics steps since the previous frame."""
    button_contact: NDArray[np.bool_]
    """(T,) whether the puck touched a button in the physics steps since the previous frame."""
    policy: int = 0
    """Index into the config's ``policies`` of the policy that played the episode."""
    layout: int = -1
    """Index into ``envs.layouts.LAYOUT_TABLE`` of the episode's button layout (-1: the MJCF's)."""
    factors: dict[str, float] = field(default_factory=dict)
    """The nuisance factors the env drew for the episode (``flat_factors`` of its ``episode_factors``)."""

    def arrays(self) -> dict[str, NDArray]:
        """The array fields, by the names of ``ARRAY_FIELDS``."""
        return {name: getattr(self, name) for name in ARRAY_FIELDS}

    def scalars(self) -> dict[str, int]:
        """The scalar fields, by the names of ``SCALAR_FIELDS``."""
        return {name: int(getattr(self, name)) for name in SCALAR_FIELDS}
