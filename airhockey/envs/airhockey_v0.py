"""AirHockey-v0: hit a puck into a chosen one of five buttons (Han et al. 2021, section 5)."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from numpy.typing import NDArray

from airhockey.envs.layouts import MJCF_LAYOUT, draw_layout, layout_x, split_indices
from airhockey.envs.nuisances import episode_nuisances, resolve_nuisances
from airhockey.envs.rendering import FrameRenderer, acquire_renderer, release_renderer, render_modes
from airhockey.tasks import Nuisances

MODEL_PATH = Path(__file__).parent / "assets" / "air_hockey.xml"

N_BUTTONS = 5
BUTTON_RED = np.array([0.9, 0.08, 0.08, 1.0], dtype=np.float32)
BUTTON_GREEN = np.array([0.05, 0.6, 0.15, 1.0], dtype=np.float32)

OBS_TYPES = ("state", "pixels", "state_pixels")
TARGET_PRESETS = {"leftright": (0, N_BUTTONS - 1), "all": tuple(range(N_BUTTONS))}

# Layout of the state observation, in order; each entry is (name, size).
STATE_LAYOUT = (
    ("bar_pos", 2),
    ("bar_vel", 2),
    ("puck_pos", 2),
    ("puck_vel", 2),
    ("target", N_BUTTONS),
)
STATE_SIZE = sum(size for _, size in STATE_LAYOUT)
REWARD_TERMS = ("approach", "aim", "outcome", "ctrl")
REWARD_KEYS = {name: f"reward_{name}" for name in REWARD_TERMS}
EVENTS = ("bar_contact", "rim_contact", "button_contact")
"""Contact events of a control step, each whether the puck touched the bar, a rim or a button in
any of its physics steps; reported in ``info`` and ``physical_state()``."""
BAR_CONTACT, RIM_CONTACT, BUTTON_CONTACT = range(len(EVENTS))
RIMS = ("left", "right", "far", "near")

MAX_PUCK_SPEED = 8.0  # m/s; the bar at full speed gives the puck under 3 m/s
REST_SPEED = 0.05  # m/s; a puck slower than this is taken to be at rest
# The bar reaches up to y = -0.05 + 0.025 (its half-thickness); a puck centred beyond this line
# (bar reach + puck radius + margin) can no longer be touched by the bar.
OUT_OF_REACH_Y = 0.1


def resolve_target_buttons(target_buttons: str | Sequence[int]) -> tuple[int, ...]:
    """Turns a preset name or a list of button indices into a sorted tuple of indices.

    Args:
        target_buttons: ``"leftright"`` (buttons 0 and 4), ``"all"`` (0-4), or button indices.

    Returns:
        The distinct button indices, sorted.

    Raises:
        ValueError: on an unknown preset, an empty list or an index outside 0-4.
    """
    if isinstance(target_buttons, str):
        if target_buttons not in TARGET_PRESETS:
            raise ValueError(
                f"target_buttons must be one of {sorted(TARGET_PRESETS)} or a list of button "
                f"indices 0-{N_BUTTONS - 1}, got {target_buttons!r}"
            )
        return TARGET_PRESETS[target_buttons]
    buttons = tuple(sorted({int(b) for b in target_buttons}))
    if not buttons or buttons[0] < 0 or buttons[-1] >= N_BUTTONS:
        raise ValueError(
            f"target_buttons must hold button indices 0-{N_BUTTONS - 1}, got {list(target_buttons)}"
        )
    return buttons


class AirHockeyEnv(MujocoEnv):
    """Hit the puck into the target button of an air-hockey table.

    ## Description
    The table of Han et al. 2021 (Figure 5), simulated in MuJoCo: a puck slides with almost no friction
    between stiff, bouncy rims; the agent moves a neon-green bar in its half of the table; five red
    buttons line the far end, and the one the puck touches turns green and stays green. Each
    episode names one button as the target. The puck starts at rest in the bar's half, and the
    agent must strike it so that it reaches the target button.

    The puck is a planar body on two slide joints at a fixed height (its contact with the table
    surface is excluded), with joint damping as air drag, as in the Robot Air Hockey Challenge
    table. The buttons are inelastic pads that stop the puck. Button hits and contact events are
    read from MuJoCo's contacts: a control step is run one physics step at a time and the contacts
    are read after each, so no hit and no contact is missed however short. `info` and
    `physical_state()` report whether the puck touched the bar, a rim or a button during the
    control step (`bar_contact`, `rim_contact`, `button_contact`).

    Frames come from MuJoCo's own offscreen `Renderer`, sized to the frame. All envs of one process
    (and thread) with the same frame size share one renderer and GL context, each drawing its own
    model and data, so many envs rendering in turn never switch GL contexts; the context is made
    current only when another one is. Each thread renders with a renderer of its own (GL contexts
    are bound to the thread that made them), so `render()` works from any thread and gives the same
    frame. `render_into(out)` renders into a given array, and
    `advance(action)` is `step` without the reward and `info`, for recorders. The model
    draws box faces as single quads and the puck's cylinder with 2 stacks instead of MuJoCo's
    4x4 quads and 16 stacks: the `top` camera's frames are the same pixels, rendered about 2.5
    times as fast on a CPU (llvmpipe), where a small frame's cost is its triangles.

    ## Action Space
    `Box(-1, 1, (2,), float32)`: the bar's velocity command along x (across the table) and y (along
    it), as a fraction of `bar_speed` (default 1.5 m/s). Each axis is a MuJoCo velocity servo, so
    the bar accelerates towards the command within a few milliseconds. Velocity control was chosen
    over position control because a strike needs speed: with position targets the policy would have
    to learn to overshoot. The bar is held in its half of the table by joint limits
    (x in [-0.35, 0.35] m, y in [-0.57, -0.05] m).

    ## Observation Space
    With `obs_type="state"` (default), a `Box` of 13 float64 values, each clipped to finite bounds:

    | index | observation                          | unit | bounds          |
    |-------|--------------------------------------|------|-----------------|
    | 0-1   | bar position (x, y)                  | m    | joint range     |
    | 2-3   | bar velocity (x, y)                  | m/s  | +-2 `bar_speed` |
    | 4-5   | puck position (x, y)                 | m    | table           |
    | 6-7   | puck velocity (x, y)                 | m/s  | +-8             |
    | 8-12  | target button, one-hot over 0-4      |      | [0, 1]          |

    With `obs_type="pixels"`, the rendered frame `Box(0, 255, (height, width, 3), uint8)` from
    `camera_name`; with `"state_pixels"`, a `Dict` with keys `"state"` and `"pixels"`.

    ## Rewards
    The reward is the sum of the terms below; each is reported in `info` as `reward_<name>`.
    - `approach`: `approach_reward_weight` x the decrease, this step, of the distance (m) from the
      bar to the puck, until the puck is first struck (potential-based shaping).
    - `aim`: `aim_reward_weight` x the decrease, this step, of the distance (m) from the puck to the
      target button (potential-based shaping).
    - `outcome`: `success_reward` when the puck hits the target, `wrong_button_reward` when it hits
      another button, `miss_reward` when the episode ends as a miss (see Episode End); else 0.
    - `ctrl`: `-ctrl_cost_weight` x the squared norm of the action.

    ## Starting State
    The bar at rest at (0, -0.5). The puck at rest at a uniform random position with x in
    [-0.3, 0.3] m and y in [-0.35, -0.15] m (the half of the table opposite the buttons, in front of
    the bar). The target is drawn uniformly from `target_buttons`, unless `reset(options={"target": k})`
    names it. All buttons red.

    ## Episode End
    Terminated when the puck touches a button (hit), or as a miss when it can no longer reach one
    without another strike: it is beyond the bar's reach (y > 0.1 m) and moving back towards the
    bar or at rest (speed < 0.05 m/s). Truncated by the `TimeLimit` wrapper after 150 steps (3 s).
    `info` always holds `hit_button` (0-4, or -1 for none), `target`, `is_success` (hit == target),
    `buttons_lit` (5 booleans), `struck` (the puck has moved), the contact events of the step
    (`bar_contact`, `rim_contact`, `button_contact`: whether the puck touched the bar, a rim or a
    button in any of its physics steps; all False after `reset`) and every reward term.

    ## Arguments
    | argument                 | default       | meaning                                                    |
    |--------------------------|---------------|------------------------------------------------------------|
    | `render_mode`            | `None`        | `"rgb_array"`, or `"human"` where a display exists         |
    | `width`, `height`        | 64, 64        | frame size in pixels (render and pixel observations)       |
    | `camera_name`            | `"top"`       | `"top"` (orthographic, whole table) or `"perspective"`     |
    | `obs_type`               | `"state"`     | `"state"`, `"pixels"` or `"state_pixels"`                  |
    | `target_buttons`         | `"leftright"` | `"leftright"` (0 and 4), `"all"`, or a list of indices     |
    | `frame_skip`             | 5             | physics steps of 4 ms per control step                     |
    | `bar_speed`              | 1.5           | bar speed (m/s) at action magnitude 1                      |
    | `approach_reward_weight` | 1.0           | see Rewards                                                |
    | `aim_reward_weight`      | 5.0           | see Rewards                                                |
    | `success_reward`         | 10.0          | see Rewards                                                |
    | `wrong_button_reward`    | -2.0          | see Rewards                                                |
    | `miss_reward`            | -1.0          | see Rewards                                                |
    | `ctrl_cost_weight`       | 0.01          | see Rewards                                                |
    | `layout`                 | `None`        | buttons: `None` (the MJCF's), `"train"` or `"test"` (one   |
    |                          |               | layout per episode from that disjoint set, `envs.layouts`) |
    | `nuisances`              | `None`        | `tasks.Nuisances` or a dict of its knobs (below)           |

    `nuisances` change only the offscreen frames, drawn per episode from its reset seed (see
    `envs.nuisances`); what an episode drew is `episode_factors`, also the reset `info`'s.

    ## Version History
    - v0: first version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": render_modes()}

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        width: int = 64,
        height: int = 64,
        camera_name: str = "top",
        obs_type: str = "state",
        target_buttons: str | Sequence[int] = "leftright",
        frame_skip: int = 5,
        bar_speed: float = 1.5,
        approach_reward_weight: float = 1.0,
        aim_reward_weight: float = 5.0,
        success_reward: float = 10.0,
        wrong_button_reward: float = -2.0,
        miss_reward: float = -1.0,
        ctrl_cost_weight: float = 0.01,
        layout: str | None = None,
        nuisances: Nuisances | dict[str, Any] | None = None,
    ) -> None:
        self._check_arguments(render_mode, obs_type, width, height, frame_skip, bar_speed)
        self.nuisances = resolve_nuisances(nuisances)
        if layout is not None:
            split_indices(layout)  # raises ValueError for an unknown set
        self.layout = layout
        self.layout_index = MJCF_LAYOUT
        """Index into ``layouts.LAYOUT_TABLE`` of this episode's button layout (-1: the MJCF's)."""
        self.obs_type = obs_type
        self.target_buttons = resolve_target_buttons(target_buttons)
        self.bar_speed = float(bar_speed)
        self.reward_weights = {
            "approach": float(approach_reward_weight),
            "aim": float(aim_reward_weight),
            "success": float(success_reward),
            "wrong_button": float(wrong_button_reward),
            "miss": float(miss_reward),
            "ctrl": float(ctrl_cost_weight),
        }

        super().__init__(
            str(MODEL_PATH),
            int(frame_skip),
            observation_space=None,
            render_mode=render_mode,
            width=int(width),
            height=int(height),
            camera_name=camera_name,
        )
        cameras = [self.model.camera(i).name for i in range(self.model.ncam)]
        if camera_name not in cameras:
            raise ValueError(f"camera_name must be one of {cameras}, got {camera_name!r}")
        self.metadata = {**self.metadata, "render_fps": int(np.round(1.0 / self.dt))}
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = self.model.camera(camera_name).id
        self._scene_option = mujoco.MjvOption()
        self._renderers: dict[threading.Thread, FrameRenderer] = {}
        self._apply_arguments_to_model()
        self._nuisances = episode_nuisances(self.nuisances, self.model, self.dt, (self.height, self.width))
        self.episode_factors: dict[str, float] = {}
        """What this episode's nuisances drew, name -> number (``{}`` without nuisances)."""

        self._index_geoms()
        self.events = np.zeros(len(EVENTS), dtype=bool)
        """Whether the puck touched the bar, a rim, a button (``EVENTS``) during the last control step."""
        self._bar_qpos = slice(2, 4)
        self._puck_qpos = slice(0, 2)
        self.observation_space = self._observation_space(obs_type)

        self.target = int(self.target_buttons[0])
        self._target_onehot = [float(k == self.target) for k in range(N_BUTTONS)]
        self._target_xy = self._button_pos[self.target].tolist()
        self.hit_button = -1
        self.buttons_lit = np.zeros(N_BUTTONS, dtype=bool)
        self._prev_bar_puck_dist = 0.0
        self._prev_puck_target_dist = 0.0
        self._struck = False

    def _check_arguments(
        self,
        render_mode: str | None,
        obs_type: str,
        width: int,
        height: int,
        frame_skip: int,
        bar_speed: float,
    ) -> None:
        """Raises ValueError on an argument out of its range (see Arguments)."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = self.metadata["render_modes"]
            hint = " (no display found for 'human')" if render_mode == "human" else ""
            raise ValueError(f"render_mode must be one of {modes} or None, got {render_mode!r}{hint}")
        if obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {list(OBS_TYPES)}, got {obs_type!r}")
        for name, value in (("width", width), ("height", height), ("frame_skip", frame_skip)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not bar_speed > 0:
            raise ValueError(f"bar_speed must be positive, got {bar_speed!r}")

    def _index_geoms(self) -> None:
        """Looks up the geoms that contacts are read by: the puck, the buttons and what a contact
        with each geom means."""
        self._puck_geom = self.model.geom("puck").id
        self._button_geoms = np.array([self.model.geom(f"button{k}").id for k in range(N_BUTTONS)])
        self._button_pos = self.model.geom_pos[self._button_geoms, :2].copy()
        self._mjcf_button_x = self._button_pos[:, 0].copy()
        # geom id -> button index, -1 for geoms that are not buttons
        self._button_of_geom = np.full(self.model.ngeom, -1, dtype=np.int64)
        self._button_of_geom[self._button_geoms] = np.arange(N_BUTTONS)
        # geom id -> index in EVENTS of a contact with it, -1 for the puck and unlisted geoms. Every
        # contact pair of the MJCF has the puck on one side, so the other side names the event.
        self._event_of_geom = np.full(self.model.ngeom, -1, dtype=np.int64)
        self._event_of_geom[self.model.geom("bar").id] = BAR_CONTACT
        self._event_of_geom[[self.model.geom(f"rim_{side}").id for side in RIMS]] = RIM_CONTACT
        self._event_of_geom[self._button_geoms] = BUTTON_CONTACT

    def _observation_space(self, obs_type: str) -> spaces.Space:
        """The space of ``obs_type``'s observations; the state's bounds are kept for clipping."""
        bar_range = self.model.jnt_range[2:4]
        puck_range = self.model.jnt_range[0:2]
        bar_vmax = 2.0 * self.bar_speed
        low = np.concatenate(
            [bar_range[:, 0], [-bar_vmax] * 2, puck_range[:, 0], [-MAX_PUCK_SPEED] * 2, np.zeros(N_BUTTONS)]
        )
        high = np.concatenate(
            [bar_range[:, 1], [bar_vmax] * 2, puck_range[:, 1], [MAX_PUCK_SPEED] * 2, np.ones(N_BUTTONS)]
        )
        self._state_low, self._state_high = low, high
        state_space = spaces.Box(low=low, high=high, dtype=np.float64)
        pixel_space = spaces.Box(0, 255, (self.height, self.width, 3), dtype=np.uint8)
        return {
            "state": state_space,
            "pixels": pixel_space,
            "state_pixels": spaces.Dict({"state": state_space, "pixels": pixel_space}),
        }[obs_type]

    def _apply_arguments_to_model(self) -> None:
        """Writes the arguments that override limits compiled into the MJCF into the model.

        The one place for them: MuJoCo clamps ``ctrl`` to the actuators' ``ctrlrange`` (+-1.5 in
        the XML) without a word, so a ``bar_speed`` beyond it would silently not happen; the
        offscreen framebuffer (64x64 in the XML) must hold ``width`` x ``height``. A test sets each
        argument above and below the XML's value and checks the model does what was asked.
        """
        self.model.actuator_ctrlrange[:] = (-self.bar_speed, self.bar_speed)
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, self.width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, self.height)

    def _set_action_space(self) -> spaces.Box:
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        return self.action_space

    # ----------------------------------------------------------------------------------- state
    @property
    def bar_pos(self) -> NDArray[np.float64]:
        """Bar centre (x, y) in metres, shape (2,)."""
        return self.data.qpos[self._bar_qpos].copy()

    @property
    def puck_pos(self) -> NDArray[np.float64]:
        """Puck centre (x, y) in metres, shape (2,)."""
        return self.data.qpos[self._puck_qpos].copy()

    def physical_state(self) -> dict[str, NDArray]:
        """The per-frame physical state: positions and velocities (m, m/s), lit buttons, and the
        contact events of the physics steps that led to this state (none after ``reset``).

        Returns:
            ``bar_pos``, ``bar_vel``, ``puck_pos``, ``puck_vel`` (each float64, shape (2,)),
            ``buttons_lit`` (bool, shape (5,)) and the ``EVENTS`` ``bar_contact``, ``rim_contact``,
            ``button_contact`` (each a bool of shape ()).
        """
        qpos, qvel = self.data.qpos.copy(), self.data.qvel.copy()  # the fields are views of these copies
        events = self.events.copy()
        return {
            "bar_pos": qpos[self._bar_qpos],
            "bar_vel": qvel[self._bar_qpos],
            "puck_pos": qpos[self._puck_qpos],
            "puck_vel": qvel[self._puck_qpos],
            "buttons_lit": self.buttons_lit.copy(),
            **{name: events[k] for k, name in enumerate(EVENTS)},
        }

    def _state_obs(self) -> NDArray[np.float64]:
        # Built from Python floats in one np.array call: at 13 values, per-slice copies cost more.
        px, py, bx, by = self.data.qpos.tolist()
        pvx, pvy, bvx, bvy = self.data.qvel.tolist()
        state = np.array([bx, by, bvx, bvy, px, py, pvx, pvy, *self._target_onehot])
        # Clip to the declared bounds (ufuncs directly: np.clip's dispatch costs more than the work).
        np.maximum(state, self._state_low, out=state)
        return np.minimum(state, self._state_high, out=state)

    def _pixels(self, out: NDArray[np.uint8] | None = None) -> NDArray[np.uint8]:
        # MuJoCo's own renderer, with an offscreen buffer of exactly the frame size: the fastest
        # offscreen path; Gymnasium's MujocoRenderer is kept for the "human" window only.
        # Each thread renders with its own renderer (GL contexts are bound to their thread).
        thread = threading.current_thread()
        renderer = self._renderers.get(thread)
        if renderer is None:
            renderer = self._renderers[thread] = acquire_renderer(self.model, self.height, self.width)
        return renderer.draw(self.model, self.data, self._scene_option, self._camera, out, self._nuisances)

    def render_into(self, out: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """``render()`` written into ``out``, a (height, width, 3) uint8 array (any render mode).

        For recorders that keep every frame: it saves allocating and copying one array per frame.
        """
        if out.shape != (self.height, self.width, 3) or out.dtype != np.uint8:
            raise ValueError(
                f"out must be a ({self.height}, {self.width}, 3) uint8 array, got {out.shape} {out.dtype}"
            )
        return self._pixels(out)

    def render(self) -> NDArray[np.uint8] | None:
        """The current frame, (height, width, 3) uint8, with ``render_mode="rgb_array"``."""
        if self.render_mode == "rgb_array":
            return self._pixels()
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None: pass render_mode='rgb_array' to gym.make")
            return None
        return super().render()

    def close(self) -> None:
        for renderer in self._renderers.values():
            release_renderer(renderer)
        self._renderers = {}
        super().close()

    def _get_obs(self) -> NDArray | dict[str, NDArray]:
        if self.obs_type == "state":
            return self._state_obs()
        if self.obs_type == "pixels":
            return self._pixels()
        return {"state": self._state_obs(), "pixels": self._pixels()}

    def _distances(self) -> tuple[float, float]:
        """Distances (m) from bar to puck and from puck to the target button's centre."""
        px, py, bx, by = self.data.qpos.tolist()
        tx, ty = self._target_xy
        return math.hypot(bx - px, by - py), math.hypot(tx - px, ty - py)

    # ----------------------------------------------------------------------------------- physics
    def _touched_button(self) -> int:
        """Index of a button in contact with the puck now, or -1."""
        ncon = self.data.ncon
        if ncon == 0:
            return -1
        geoms = self.data.contact.geom[:ncon]
        hits = self._button_of_geom[geoms[geoms[:, 0] == self._puck_geom, 1]]
        hits = np.concatenate([hits, self._button_of_geom[geoms[geoms[:, 1] == self._puck_geom, 0]]])
        hits = hits[hits >= 0]
        if hits.size == 0:
            return -1
        # The puck can wedge against two neighbours at once: credit the one nearest its centre.
        return int(hits[np.argmin(np.abs(self._button_pos[hits, 0] - self.data.qpos[0]))])

    def _simulate(self, ctrl: tuple[float, float]) -> int:
        """Advances one control step, one physics step at a time, and records its contact events.

        After each physics step MuJoCo's contacts are those that acted in it; reading them after
        every step (not only the last) is what catches a contact shorter than a control step. The
        steps are the ones ``mj_step(nstep=frame_skip)`` takes, so the trajectory is the same.

        Returns:
            The first button the puck touched during the control step, or -1.
        """
        self.data.ctrl[:] = ctrl
        self.events[:] = False
        hit = -1
        for _ in range(self.frame_skip):
            mujoco.mj_step(self.model, self.data)
            if self.data.ncon:  # most physics steps have no contact: skip reading them
                geoms = self.data.contact.geom[: self.data.ncon]
                kinds = self._event_of_geom[geoms]
                self.events[kinds[kinds >= 0]] = True
                if hit < 0 and self.events[BUTTON_CONTACT]:
                    hit = self._touched_button()
        return hit

    def _light(self, button: int) -> None:
        self.buttons_lit[button] = True
        self.model.geom_rgba[self._button_geoms[button]] = BUTTON_GREEN

    # ----------------------------------------------------------------------------------- API
    def step(self, action: NDArray[np.float32]) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        ax, ay = self._clipped(action)
        terminated, missed = self._transition(ax, ay)
        bar_puck, puck_target = self._distances()
        w = self.reward_weights
        rewards = {
            "approach": 0.0,
            "aim": w["aim"] * (self._prev_puck_target_dist - puck_target),
            "outcome": 0.0,
            "ctrl": -w["ctrl"] * (ax * ax + ay * ay),
        }
        if not self._approach_done:
            rewards["approach"] = w["approach"] * (self._prev_bar_puck_dist - bar_puck)
            self._approach_done = self._struck
        self._prev_bar_puck_dist, self._prev_puck_target_dist = bar_puck, puck_target
        if self.hit_button >= 0:
            rewards["outcome"] = w["success"] if self.hit_button == self.target else w["wrong_button"]
        elif missed:
            rewards["outcome"] = w["miss"]

        if self.render_mode == "human":
            self.render()
        reward = rewards["approach"] + rewards["aim"] + rewards["outcome"] + rewards["ctrl"]
        return self._get_obs(), reward, terminated, False, self._info(rewards)

    def advance(self, action: NDArray[np.float32]) -> tuple[Any, bool]:
        """``step`` for recorders that need only the state: returns ``(observation, terminated)``.

        The same transition as ``step`` (physics, hit detection, lit buttons, termination, and the
        bookkeeping the next reward depends on), without computing the reward and the ``info``
        dict (about 4% of the time per frame of generation, which renders and records every
        frame). ``step`` and ``advance`` can be mixed within an episode. ``hit_button``,
        ``buttons_lit`` and ``events`` hold what ``info`` would report.
        """
        terminated, _ = self._transition(*self._clipped(action))
        self._prev_bar_puck_dist, self._prev_puck_target_dist = self._distances()
        self._approach_done = self._approach_done or self._struck
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), terminated

    @staticmethod
    def _clipped(action: NDArray[np.float32]) -> tuple[float, float]:
        """The action as two floats clipped to [-1, 1]."""
        if type(action) is np.ndarray and action.shape == (2,) and action.dtype.kind == "f":
            ax, ay = action.tolist()  # the same floats, without a float64 copy
        else:
            ax, ay = np.asarray(action, dtype=np.float64).reshape(2).tolist()
        return min(max(ax, -1.0), 1.0), min(max(ay, -1.0), 1.0)

    def _transition(self, ax: float, ay: float) -> tuple[bool, bool]:
        """Advances one control step under a clipped action; returns ``(terminated, missed)``."""
        hit = self._simulate((ax * self.bar_speed, ay * self.bar_speed))
        if self._nuisances is not None:
            self._nuisances.advance()
        if hit >= 0 and self.hit_button < 0:
            self.hit_button = hit
            self._light(hit)
        py = float(self.data.qpos[1])
        vx, vy = self.data.qvel[0:2].tolist()
        speed = math.hypot(vx, vy)
        if not self._struck and speed > 1e-3:
            self._struck = True
        missed = self.hit_button < 0 and py > OUT_OF_REACH_Y and (vy < 0.0 or speed < REST_SPEED)
        return self.hit_button >= 0 or missed, missed

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Resets the table; ``options={"target": k}`` sets the target button to k (0-4)."""
        self._reset_options = options or {}
        return super().reset(seed=seed, options=options)

    def reset_model(self) -> NDArray | dict[str, NDArray]:
        target = self._reset_options.get("target")
        if target is None:
            target = self.target_buttons[int(self.np_random.integers(len(self.target_buttons)))]
        elif int(target) != target or not 0 <= target < N_BUTTONS:
            raise ValueError(f"options['target'] must be a button index 0-{N_BUTTONS - 1}, got {target!r}")
        self.target = int(target)
        self._target_onehot = [float(k == self.target) for k in range(N_BUTTONS)]
        self._target_xy = self._button_pos[self.target].tolist()
        self.hit_button = -1
        self.buttons_lit[:] = False
        self.events[:] = False
        self.model.geom_rgba[self._button_geoms] = BUTTON_RED
        self._struck = False
        self._approach_done = False

        qpos = np.zeros(self.model.nq)
        qpos[0] = self.np_random.uniform(-0.3, 0.3)
        qpos[1] = self.np_random.uniform(-0.35, -0.15)
        qpos[2:4] = (0.0, -0.5)
        if self.layout is not None:  # drawn after the puck's start, so the MJCF layout draws nothing
            self._place_buttons(draw_layout(self.np_random, self.layout))
        self.set_state(qpos, np.zeros(self.model.nv))
        self._prev_bar_puck_dist, self._prev_puck_target_dist = self._distances()
        if self._nuisances is not None:  # last: the episode's state is drawn as without nuisances
            self.episode_factors = self._nuisances.reset(self.model, self.np_random)
        return self._get_obs()

    @property
    def button_x(self) -> NDArray[np.float64]:
        """The buttons' centres along x (m) in this episode, shape (5,), buttons 0-4."""
        return self._button_pos[:, 0].copy()

    def _place_buttons(self, index: int) -> None:
        """Moves the buttons to layout ``index`` (before ``set_state``, whose forward pass places them)."""
        self.layout_index = index
        self._button_pos[:, 0] = layout_x(index, self._mjcf_button_x)
        self.model.geom_pos[self._button_geoms, 0] = self._button_pos[:, 0]
        self._target_xy = self._button_pos[self.target].tolist()

    def _get_reset_info(self) -> dict[str, Any]:
        return {**self._info(dict.fromkeys(REWARD_TERMS, 0.0)), "episode_factors": dict(self.episode_factors)}

    def _info(self, rewards: dict[str, float]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "hit_button": self.hit_button,
            "target": self.target,
            "is_success": self.hit_button == self.target,
            "buttons_lit": self.buttons_lit.copy(),
            "struck": self._struck,
            **{name: bool(self.events[k]) for k, name in enumerate(EVENTS)},
        }
        for name, value in rewards.items():
            info[REWARD_KEYS[name]] = value
        return info
