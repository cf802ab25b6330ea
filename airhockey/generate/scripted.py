"""A scripted controller for AirHockey-v0: a deterministic baseline policy that needs no training.

It strikes the puck with a corner of the bar, so that the contact normal, and with it the puck's
new direction, points at the target button (a flat face would only push the puck straight on).
When the bar cannot reach the places a direct shot needs, it banks the shot off a side rim: it
aims at the target's mirror image in that rim. All geometry is read from the env's MJCF.

``python -c "from airhockey.generate import ScriptedPolicy"``; use it as ``--policy scripted``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from airhockey.envs import N_BUTTONS
from airhockey.envs.airhockey_v0 import MODEL_PATH


class ScriptedPolicy:
    """Corner-strike controller with the ``predict`` interface of a stable-baselines3 policy.

    Stateless: the action depends only on the observation (and the buttons' positions, where they
    are not the MJCF's), so a batch of envs in any phase can share one call. Phases, read from the
    observation: (1) go to a point behind the puck on the line through the puck towards the aim
    point, (2) once on that line, drive along it through the puck at full speed, (3) once the puck
    moves, stop.

    Args:
        aim_inset: aim this far (m) from the target button's centre towards the table's middle.
        standoff: distance (m) behind the contact point from which the strike starts.
        gain: proportional gain (action per metre of position error) while positioning.
        line_tolerance: how close (m) to the strike line the bar must be to strike.

    docs/agent.md gives its hit rate per target button.
    """

    name = "scripted"
    reads_layout = True
    """``predict`` takes the buttons' positions (``button_x``): the observation names the target
    button, not where it is."""

    def __init__(
        self,
        aim_inset: float = 0.03,
        standoff: float = 0.08,
        gain: float = 12.0,
        line_tolerance: float = 0.01,
    ) -> None:
        model = mujoco.MjModel.from_xml_path(str(MODEL_PATH))
        self.aim_inset, self.standoff, self.gain, self.line_tolerance = (
            aim_inset,
            standoff,
            gain,
            line_tolerance,
        )
        self.bar_half = model.geom("bar").size[:2].copy()  # (half length along x, half thickness along y)
        self.puck_radius = float(model.geom("puck").size[0])
        self.bar_range = np.stack([model.joint("bar_x").range, model.joint("bar_y").range])  # (2, 2)
        buttons = [model.geom(f"button{k}") for k in range(N_BUTTONS)]
        self.button_x = np.array([b.pos[0] for b in buttons])
        # The puck centre when it touches a button's face.
        self.aim_y = float(buttons[0].pos[1] - buttons[0].size[1] - self.puck_radius)
        rim = model.geom("rim_right")
        # The puck centre when it touches a side rim: the mirror line for bank shots.
        self.bank_x = float(rim.pos[0] - rim.size[0] - self.puck_radius)

    @staticmethod
    def identity() -> dict[str, str]:
        """Name and SHA-256 of this controller's source, which fixes its behaviour."""
        return {
            "name": ScriptedPolicy.name,
            "sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        }

    def _strike_plan(
        self, puck: NDArray[np.float64], aim_x: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Strike direction (N, 2) towards (aim_x, aim_y) and the bar centre (N, 2) at contact."""
        direction = np.stack([aim_x, np.full_like(aim_x, self.aim_y)], axis=1) - puck
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        # The corner on the side the puck must go: the upper-left corner sends it left.
        side = np.where(direction[:, 0] < 0, -1.0, 1.0)
        corner_offset = np.stack([side * self.bar_half[0], np.full_like(side, self.bar_half[1])], axis=1)
        return direction, puck - self.puck_radius * direction - corner_offset

    def predict(
        self,
        observation: NDArray[np.float64],
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
        button_x: NDArray[np.float64] | None = None,
    ) -> tuple[NDArray[np.float32], None]:
        """Actions for a batch of state observations.

        Args:
            observation: (N, 13) or (13,) state observations of AirHockey-v0.
            state, episode_start, deterministic: accepted for stable-baselines3 compatibility;
                the controller is stateless and deterministic.
            button_x: (N, 5) or (5,) the buttons' centres along x (m) in each env (the env's
                ``button_x``); None: the MJCF's.

        Returns:
            ``(actions, None)``, actions float32 of shape (N, 2), or (2,) for a single observation.
        """
        obs = np.asarray(observation, dtype=np.float64)
        single = obs.ndim == 1
        obs = np.atleast_2d(obs)
        bar, puck, puck_vel = obs[:, 0:2], obs[:, 4:6], obs[:, 6:8]
        buttons = np.broadcast_to(self.button_x if button_x is None else button_x, (len(obs), N_BUTTONS))
        target_x = buttons[np.arange(len(obs)), np.argmax(obs[:, 8 : 8 + N_BUTTONS], axis=1)]
        aim_x = target_x - np.sign(target_x) * self.aim_inset

        direction, contact = self._strike_plan(puck, aim_x)
        for mirror_x in (-2 * self.bank_x - aim_x, 2 * self.bank_x - aim_x):
            # The bar must reach both the contact point and the start of the strike behind it.
            x = np.stack([contact[:, 0], contact[:, 0] - self.standoff * direction[:, 0]], axis=1)
            unreachable = ((x < self.bar_range[0, 0]) | (x > self.bar_range[0, 1])).any(axis=1)
            bank_direction, bank_contact = self._strike_plan(puck, mirror_x)
            direction = np.where(unreachable[:, None], bank_direction, direction)
            contact = np.where(unreachable[:, None], bank_contact, contact)

        offset = bar - contact
        along = np.sum(offset * direction, axis=1)  # negative while the bar is behind the contact point
        across = offset - along[:, None] * direction
        on_line = (np.linalg.norm(across, axis=1) < self.line_tolerance) & (along < 0)
        position = self.gain * (contact - self.standoff * direction - bar)
        strike = direction - self.gain * across
        action = np.where(on_line[:, None], strike, position)
        struck = np.linalg.norm(puck_vel, axis=1) > 0.05
        action = np.where(struck[:, None], 0.0, np.clip(action, -1.0, 1.0)).astype(np.float32)
        return (action[0] if single else action), None
