"""Button layouts of AirHockey-v0: where along the far rim the five buttons sit.

The MJCF places the buttons at x = -0.36, -0.18, 0, 0.18, 0.36 m. ``LAYOUT_TABLE`` holds
``N_LAYOUTS`` other layouts, made once from a fixed seed: the five buttons in order from left to
right, at least ``MIN_GAP`` apart edge to edge (so they never overlap and the puck, wider than
any gap, never slips between two), each inside the side rims (|x| at most ``MAX_X``), which the
puck reaches directly or off a side rim. The table is split by index parity into two disjoint
sets: ``train`` (even indices) and ``test`` (odd), so that a model trained on ``train`` layouts
is tested on layouts it never saw.

An env made with ``layout="train"`` or ``"test"`` draws one layout of that set per episode from
its ``np_random``, after the puck's start, so an episode's layout follows from its reset seed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

N_BUTTONS = 5
BUTTON_HALF_WIDTH = 0.06
"""Half the width of a button along x (m), as in the MJCF."""
MAX_X = 0.39
"""Largest |x| of a button's centre (m): its outer edge touches a side rim's inner face (0.45 m)."""
MIN_GAP = 0.02
"""Smallest gap between two neighbouring buttons' edges (m); the puck is 0.1 m wide."""
N_LAYOUTS = 64
"""Layouts in ``LAYOUT_TABLE``; half of them ``train``, half ``test``."""
LAYOUT_SEED = 20240529
"""The seed the table is made from: part of its definition, never changed."""
SPLITS = ("train", "test")
"""The two disjoint sets of layouts, by index parity: even indices ``train``, odd ``test``."""
MJCF_LAYOUT = -1
"""The layout index recorded for an episode on the MJCF's own button positions."""


def _make_table() -> NDArray[np.float64]:
    """``N_LAYOUTS`` layouts, (N_LAYOUTS, 5) button centres x (m), rounded to the millimetre.

    The spare width of the rim (what five buttons at the smallest gap leave) is shared among the
    two margins and the four gaps by a flat Dirichlet draw.
    """
    rng = np.random.default_rng(LAYOUT_SEED)
    pitch = 2 * BUTTON_HALF_WIDTH + MIN_GAP + 0.001  # the millimetre rounding keeps the gap
    spare = 2 * MAX_X - (N_BUTTONS - 1) * pitch
    shares = rng.dirichlet(np.ones(N_BUTTONS + 1), size=N_LAYOUTS)[:, :N_BUTTONS] * spare
    x = -MAX_X + np.cumsum(shares, axis=1) + pitch * np.arange(N_BUTTONS)
    return np.round(x, 3)


LAYOUT_TABLE: NDArray[np.float64] = _make_table()
"""(N_LAYOUTS, 5) button centres along x (m), buttons 0-4 from left to right."""


def split_indices(split: str) -> NDArray[np.int64]:
    """Indices into ``LAYOUT_TABLE`` of the layouts of ``split`` (``SPLITS``).

    Raises:
        ValueError: for a name not in ``SPLITS``.
    """
    if split not in SPLITS:
        raise ValueError(f"layout must be one of {list(SPLITS)} or None, got {split!r}")
    return np.arange(SPLITS.index(split), N_LAYOUTS, 2)


def draw_layout(rng: np.random.Generator, split: str) -> int:
    """One layout index of ``split``, drawn uniformly with ``rng`` (one integer draw)."""
    indices = split_indices(split)
    return int(indices[rng.integers(len(indices))])


def layout_x(index: int, mjcf_x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Button centres x (m), shape (5,), of layout ``index``; ``MJCF_LAYOUT`` gives ``mjcf_x``."""
    return np.array(mjcf_x if index == MJCF_LAYOUT else LAYOUT_TABLE[index], dtype=np.float64)
