"""Visual nuisances of AirHockey-v0: what the camera sees varies per episode, never what happens.

Each knob of ``airhockey.tasks.Nuisances`` is a strength; ``EpisodeNuisances`` turns the knobs into
one episode's draws and applies them to the env's frames:

- ``camera_jitter``: the camera's pose and field of view, offset once per episode;
- ``camera_shake``: a small offset of the camera drawn anew for every frame;
- ``lighting``: the lights' intensity and colour, and the direction of the overhead light;
- ``colours``: hue, saturation and value of the table surface, the rims, the bar and the puck;
- ``distractors``: flat discs and tiles gliding across the table along their own straight,
  rim-reflected paths, drawn under the puck, the bar and the buttons;
- ``sensor_noise``: Gaussian noise added to the frame's pixels;
- ``occluder``: an opaque square plate floating above part of the table (never over the buttons).

Nothing here touches the physics. The camera, the lights, the distractors and the occluder are
changed in the renderer's scene after MuJoCo builds it from the env's model and data (the
distractors and the occluder are drawn geoms, not bodies of the model); the colours are the env's
own model's ``geom_rgba`` and ``mat_rgba``, which no contact reads. The trajectories, contacts and
labels are those of the same seed and actions without nuisances.

Every draw comes from a generator derived at reset from the env's ``np_random`` after the initial
state was drawn, without consuming from it (``PCG64.jumped``): the episode's initial state and the
env's random stream are those of the same seed without nuisances, and an episode replays exactly
from its reset seed. Per-frame draws (shake, noise) are made once per control step, in step order,
so rendering a frame twice gives the same pixels.
"""

from __future__ import annotations

import colorsys
import functools
import math
import statistics
from dataclasses import fields
from typing import Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from airhockey.errors import UserError
from airhockey.tasks import Nuisances

TABLE_HALF = (0.45, 0.6)
"""Half-extents (m) of the table's playing surface inside the rims, along x and y."""
BUTTONS_NEAR_EDGE = 0.54
"""y (m) of the buttons' edge nearest the bar: the occluder stays below it."""

CAMERA_SHIFT = 0.08
"""Largest per-episode offset (m) of the camera in its image plane, at ``camera_jitter`` 1."""
CAMERA_ROLL = 10.0
"""Largest per-episode rotation (degrees) about the view axis, at ``camera_jitter`` 1."""
CAMERA_TILT = 6.0
"""Largest per-episode tilt (degrees) of the view axis, each way, at ``camera_jitter`` 1."""
CAMERA_ZOOM = 0.15
"""Largest relative change of the field of view, at ``camera_jitter`` 1."""
SHAKE_SHIFT = 0.01
"""Standard deviation (m) of the per-frame offset in the image plane, at ``camera_shake`` 1."""
SHAKE_ROLL = 1.0
"""Standard deviation (degrees) of the per-frame roll, at ``camera_shake`` 1."""

LIGHT_DIMMING = 0.6
"""Largest relative dimming of every light, at ``lighting`` 1 (brightening goes to half of it)."""
LIGHT_TINT = 0.25
"""Largest relative change of each colour channel of the lights, at ``lighting`` 1."""
LIGHT_TILT = 60.0
"""Largest tilt (degrees) of the overhead light from vertical, at ``lighting`` 1."""

COLOUR_PARTS = ("surface", "rims", "bar", "puck")
"""What ``colours`` recolours (never the buttons, whose red and green are what a hit looks like)."""
HUE_SHIFT = 0.5
"""Largest hue shift (fraction of the colour wheel), at ``colours`` 1: any hue."""
SATURATION_SHIFT = 0.5
"""Largest change of HSV saturation, at ``colours`` 1."""
VALUE_SHIFT = 0.3
"""Largest change of HSV value (brightness), at ``colours`` 1."""

DISTRACTOR_RADIUS = (0.03, 0.055)
"""Range (m) of a distractor's radius (a disc) or half-side (a square tile)."""
DISTRACTOR_SPEED = (0.3, 1.2)
"""Range (m/s) of a distractor's speed; the puck, struck, moves at up to about 3 m/s."""
DISTRACTOR_HALF_HEIGHT = 0.004
"""Half-thickness (m) of a distractor, lying on the surface: below the puck's top (0.02 m), so
that the puck, the bar and the buttons are drawn over it."""
OCCLUDER_HEIGHT = 0.08
"""Height (m) of the occluder's centre: above the rims (0.06 m), the bar and the puck."""
OCCLUDER_RGBA = np.array([0.42, 0.4, 0.36, 1.0], dtype=np.float32)

_IDENTITY = np.eye(3).ravel()

FACTOR_NAMES: dict[str, tuple[str, ...]] = {
    "camera_jitter": (
        "camera_shift_right",
        "camera_shift_up",
        "camera_roll_deg",
        "camera_pitch_deg",
        "camera_yaw_deg",
        "camera_zoom",
    ),
    "camera_shake": ("camera_shake",),
    "lighting": (
        "light_intensity",
        "light_tint_r",
        "light_tint_g",
        "light_tint_b",
        "light_tilt_deg",
        "light_azimuth_deg",
    ),
    "colours": tuple(
        f"{part}_{hsv}_shift" for part in COLOUR_PARTS for hsv in ("hue", "saturation", "value")
    ),
    "distractors": ("distractors",),
    "sensor_noise": ("noise_std",),
    "occluder": ("occluder_x", "occluder_y", "occluder_side"),
}
"""The names of an episode's factors by knob (``EpisodeNuisances.reset``): shifts in metres, angles
in degrees, hue shifts in turns of the colour wheel, ``camera_zoom`` and the light's intensity and
tints as factors, ``camera_shake`` and ``distractors`` the knobs themselves, ``noise_std`` a
fraction of 255, the occluder's centre and side in metres."""


def resolve_nuisances(nuisances: Nuisances | dict[str, Any] | None) -> Nuisances:
    """The env argument ``nuisances`` as a ``Nuisances``.

    Args:
        nuisances: a ``Nuisances``, a dict of some of its knobs (the rest 0), or None (none).

    Raises:
        ValueError: one line naming an unknown knob, or a knob outside its range.
    """
    if nuisances is None:
        return Nuisances()
    if isinstance(nuisances, Nuisances):
        return nuisances
    if not isinstance(nuisances, dict):
        raise ValueError(
            f"nuisances must be a Nuisances, a dict of its knobs or None, got {type(nuisances).__name__}"
        )
    knobs = [f.name for f in fields(Nuisances)]
    unknown = sorted(set(nuisances) - set(knobs))
    if unknown:
        raise ValueError(f"unknown nuisance knob {unknown[0]!r}: use {', '.join(knobs)}")
    try:
        return Nuisances(**nuisances)
    except UserError as err:
        raise ValueError(f"nuisances: {err}") from None


def episode_nuisances(
    knobs: Nuisances, model: mujoco.MjModel, dt: float, frame_size: tuple[int, int]
) -> EpisodeNuisances | None:
    """An env's ``EpisodeNuisances`` (arguments as its), or None when every knob is 0."""
    return EpisodeNuisances(knobs, model, dt, frame_size) if knobs.active else None


class EpisodeNuisances:
    """One env's nuisances: the episode's draws and how they change its frames.

    Made once per env (only when a knob is on); ``reset`` draws an episode, ``advance`` a frame,
    ``dress`` changes the scene of a frame and ``add_noise`` its pixels.

    Args:
        knobs: the strengths (at least one non-zero).
        model: the env's own model: its colours are the ones recoloured.
        dt: seconds per control step (the distractors' clock).
        frame_size: the frames' height and width in pixels.
    """

    def __init__(
        self, knobs: Nuisances, model: mujoco.MjModel, dt: float, frame_size: tuple[int, int]
    ) -> None:
        self.knobs = knobs
        self.dt = float(dt)
        surface_mat = int(model.geom_matid[model.geom("surface").id])
        self._targets = {
            "surface": ("mat", [surface_mat]),
            "rims": ("geom", [model.geom(f"rim_{side}").id for side in ("left", "right", "far", "near")]),
            "bar": ("geom", [model.geom("bar").id]),
            "puck": ("geom", [model.geom("puck_visual").id]),
        }
        self._default_rgba = {
            part: (model.mat_rgba if kind == "mat" else model.geom_rgba)[ids[0]].copy()
            for part, (kind, ids) in self._targets.items()
        }
        self._rng = np.random.default_rng(0)
        self._frame = 0
        self._camera = np.zeros(5)  # shift right, shift up (m), roll, tilt pitch, tilt yaw (rad)
        self._zoom = 1.0
        self._shake = np.zeros(3)  # shift right, shift up (m), roll (rad)
        self._lights = (1.0, np.ones(3), np.array([0.0, 0.0, -1.0]))  # intensity, tint, direction
        self._distractors: list[dict[str, Any]] = []
        self._occluder: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        self._frame_size = frame_size[0] * frame_size[1] * 3  # values in an RGB frame
        self._noise_table: NDArray[np.int16] | None = None  # noise (0-255 units) by 16-bit draw
        self._noise_draw = np.zeros(self._frame_size, dtype=np.uint16)

    # ------------------------------------------------------------------------------- draws
    def reset(self, model: mujoco.MjModel, np_random: np.random.Generator) -> dict[str, float]:
        """Draws a new episode and recolours ``model``; returns the episode's factors.

        Args:
            model: the env's model (its colours are set here).
            np_random: the env's generator, after the episode's initial state was drawn; it is
                not drawn from (the episode's generator starts at a jump ahead of its state).

        Returns:
            What was drawn, flat: name -> number, the ``FACTOR_NAMES`` of the knobs that are on.
        """
        self._rng = np.random.Generator(np_random.bit_generator.jumped())
        rng, k = self._rng, self.knobs
        factors: dict[str, float] = {}
        if k.camera_jitter:
            factors.update(self._draw_camera(rng, k.camera_jitter))
        if k.camera_shake:
            factors["camera_shake"] = float(k.camera_shake)
        if k.lighting:
            factors.update(self._draw_lights(rng, k.lighting))
        if k.colours:
            factors.update(self._draw_colours(rng, model, k.colours))
        if k.distractors:
            factors.update(self._draw_distractors(rng, k.distractors))
        if k.sensor_noise:
            std = float(k.sensor_noise * rng.uniform(0.5, 1.0))
            self._noise_table = np.rint(_normal_quantiles() * (std * 255.0)).astype(np.int16)
            factors["noise_std"] = std
        if k.occluder:
            factors.update(self._draw_occluder(rng, k.occluder))
        self._frame = -1
        self.advance()
        return factors

    def advance(self) -> None:
        """Moves to the next frame and draws its per-frame values (shake, noise)."""
        self._frame += 1
        shake = self.knobs.camera_shake
        if shake:
            shift, roll = SHAKE_SHIFT * shake, math.radians(SHAKE_ROLL) * shake
            self._shake = self._rng.normal(0.0, 1.0, 3) * (shift, shift, roll)
        if self._noise_table is not None:
            raw = self._rng.bit_generator.random_raw(-(-self._frame_size // 4))  # 4 draws per 64 bits
            self._noise_draw = raw.view(np.uint16)[: self._frame_size]

    def _draw_camera(self, rng: np.random.Generator, s: float) -> dict[str, float]:
        shift, roll, tilt = CAMERA_SHIFT * s, math.radians(CAMERA_ROLL) * s, math.radians(CAMERA_TILT) * s
        self._camera = rng.uniform(-1.0, 1.0, 5) * (shift, shift, roll, tilt, tilt)
        self._zoom = float(1.0 + CAMERA_ZOOM * s * rng.uniform(-1.0, 1.0))
        dx, dy, r, p, y = self._camera.tolist()
        return {
            "camera_shift_right": dx,
            "camera_shift_up": dy,
            "camera_roll_deg": math.degrees(r),
            "camera_pitch_deg": math.degrees(p),
            "camera_yaw_deg": math.degrees(y),
            "camera_zoom": self._zoom,
        }

    def _draw_lights(self, rng: np.random.Generator, s: float) -> dict[str, float]:
        intensity = float(1.0 + LIGHT_DIMMING * s * rng.uniform(-1.0, 0.5))
        tint = 1.0 + LIGHT_TINT * s * rng.uniform(-1.0, 1.0, 3)
        tilt = math.radians(LIGHT_TILT * s) * float(rng.uniform(0.0, 1.0))
        azimuth = float(rng.uniform(0.0, 2.0 * math.pi))
        direction = np.array(
            [math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth), -math.cos(tilt)]
        )
        self._lights = (intensity, tint, direction)
        return {
            "light_intensity": intensity,
            **{f"light_tint_{c}": float(t) for c, t in zip("rgb", tint, strict=True)},
            "light_tilt_deg": math.degrees(tilt),
            "light_azimuth_deg": math.degrees(azimuth),
        }

    def _draw_colours(self, rng: np.random.Generator, model: mujoco.MjModel, s: float) -> dict[str, float]:
        factors = {}
        for part, (kind, ids) in self._targets.items():
            dh, ds, dv = rng.uniform(-1.0, 1.0, 3) * (HUE_SHIFT * s, SATURATION_SHIFT * s, VALUE_SHIFT * s)
            r, g, b, a = self._default_rgba[part].tolist()
            h, sat, val = colorsys.rgb_to_hsv(r, g, b)
            sat, val = min(max(sat + ds, 0.0), 1.0), min(max(val + dv, 0.0), 1.0)
            rgb = colorsys.hsv_to_rgb((h + dh) % 1.0, sat, val)
            (model.mat_rgba if kind == "mat" else model.geom_rgba)[ids] = (*rgb, a)
            for name, shift in (("hue", dh), ("saturation", ds), ("value", dv)):
                factors[f"{part}_{name}_shift"] = float(shift)
        return factors

    def _draw_distractors(self, rng: np.random.Generator, n: int) -> dict[str, float]:
        self._distractors = []
        for _ in range(n):
            radius = float(rng.uniform(*DISTRACTOR_RADIUS))
            box = bool(rng.integers(2))
            depth = radius if box else DISTRACTOR_HALF_HEIGHT  # a cylinder's size: radius, half-height
            half = np.array(TABLE_HALF) - radius
            start = rng.uniform(-half, half)
            angle, speed = rng.uniform(0.0, 2.0 * math.pi), rng.uniform(*DISTRACTOR_SPEED)
            spin = float(rng.uniform(-math.pi, math.pi))  # rad/s, a tile's turning rate
            rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.4, 1.0), rng.uniform(0.3, 1.0))
            self._distractors.append(
                {
                    "type": mujoco.mjtGeom.mjGEOM_BOX if box else mujoco.mjtGeom.mjGEOM_CYLINDER,
                    "size": np.array([radius, depth, DISTRACTOR_HALF_HEIGHT]),
                    "half": half.tolist(),
                    "start": start.tolist(),
                    "velocity": [speed * math.cos(angle), speed * math.sin(angle)],
                    "spin": spin,
                    "rgba": np.array([*rgb, 1.0], dtype=np.float32),
                }
            )
        return {"distractors": float(n)}

    def _draw_occluder(self, rng: np.random.Generator, side: float) -> dict[str, float]:
        half = side * TABLE_HALF[0]  # side is a fraction of the table's width (2 * TABLE_HALF[0])
        x = float(rng.uniform(-TABLE_HALF[0] + half, TABLE_HALF[0] - half))
        y = float(rng.uniform(-TABLE_HALF[1] + half, BUTTONS_NEAR_EDGE - half))
        self._occluder = (np.array([x, y, OCCLUDER_HEIGHT]), np.array([half, half, 0.005]))
        return {"occluder_x": x, "occluder_y": y, "occluder_side": 2.0 * half}

    # ------------------------------------------------------------------------------- frames
    def dress(self, scene: mujoco.MjvScene) -> None:
        """Applies this frame's nuisances to ``scene``, just built by ``mjv_updateScene``."""
        k = self.knobs
        if k.camera_jitter or k.camera_shake:
            self._move_camera(scene)
        if k.lighting:
            intensity, tint, direction = self._lights
            for i in range(scene.nlight):
                light = scene.lights[i]
                light.ambient = np.asarray(light.ambient) * intensity * tint
                light.diffuse = np.asarray(light.diffuse) * intensity * tint
                if not light.headlight:
                    light.dir = direction
        t = self._frame * self.dt
        for item in self._distractors:
            (x0, y0), (vx, vy), (hx, hy) = item["start"], item["velocity"], item["half"]
            x, y = _reflect(x0 + vx * t, hx), _reflect(y0 + vy * t, hy)
            c, s = math.cos(item["spin"] * t), math.sin(item["spin"] * t)
            mat = np.array([c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0])
            _add_geom(
                scene, item["type"], item["size"], np.array([x, y, DISTRACTOR_HALF_HEIGHT]), mat, item["rgba"]
            )
        if self._occluder is not None:
            pos, size = self._occluder
            _add_geom(scene, mujoco.mjtGeom.mjGEOM_BOX, size, pos, _IDENTITY, OCCLUDER_RGBA)

    def _move_camera(self, scene: mujoco.MjvScene) -> None:
        # Plain Python floats: numpy's overhead on 3-vectors costs more than the frame's other work.
        dx, dy, roll, pitch, yaw = self._camera.tolist()
        sx, sy, sroll = self._shake.tolist()
        dx, dy, roll = dx + sx, dy + sy, roll + sroll
        eye = scene.camera[0]
        forward, up = eye.forward.tolist(), eye.up.tolist()
        right = _cross(forward, up)
        shift = [dx * r + dy * u for r, u in zip(right, up, strict=True)]
        forward, up = _turn(forward, up, pitch)  # about right
        forward, right = _turn(forward, right, yaw)  # about up
        up, right = _turn(up, right, roll)  # about forward
        for i in range(2):  # the two eyes, which look the same way; a mono frame is their average
            cam = scene.camera[i]
            cam.pos = [p + d for p, d in zip(cam.pos.tolist(), shift, strict=True)]
            cam.forward, cam.up = forward, up
            cam.frustum_width *= self._zoom
            cam.frustum_bottom *= self._zoom
            cam.frustum_top *= self._zoom
            cam.frustum_center *= self._zoom

    def add_noise(self, frame: NDArray[np.uint8]) -> None:
        """Adds this frame's Gaussian pixel noise to ``frame`` in place (rounded, clipped to 0-255)."""
        if self._noise_table is None:
            return
        noisy = frame.astype(np.int16)
        noisy += np.take(self._noise_table, self._noise_draw).reshape(frame.shape)
        np.clip(noisy, 0, 255, out=noisy)
        frame[...] = noisy


def _turn(a: list[float], b: list[float], angle: float) -> tuple[list[float], list[float]]:
    """Two orthonormal 3-vectors turned by ``angle`` (rad) in their plane, from ``a`` towards ``b``."""
    c, s = math.cos(angle), math.sin(angle)
    return [c * x + s * y for x, y in zip(a, b, strict=True)], [
        c * y - s * x for x, y in zip(a, b, strict=True)
    ]


def _cross(a: list[float], b: list[float]) -> list[float]:
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


@functools.cache
def _normal_quantiles() -> NDArray[np.float32]:
    """The standard normal's quantiles at the midpoints of 65,536 equal steps of probability: a
    uniform 16-bit number looked up here is a Gaussian draw (to within 4.2 standard deviations)."""
    normal = statistics.NormalDist()
    return np.array([normal.inv_cdf((i + 0.5) / 65536) for i in range(65536)], dtype=np.float32)


def _reflect(x: float, half: float) -> float:
    """A position along a straight path folded back into ``[-half, half]`` (reflections off the rims)."""
    folded = (x + half) % (4.0 * half)
    return (folded if folded < 2.0 * half else 4.0 * half - folded) - half


def _add_geom(
    scene: mujoco.MjvScene,
    kind: int,
    size: NDArray[np.float64],
    pos: NDArray[np.float64],
    mat: NDArray[np.float64],
    rgba: NDArray[np.float32],
) -> None:
    """Appends a drawn-only geom to ``scene`` (unlit by specular light, like the table's geoms)."""
    if scene.ngeom >= scene.maxgeom:
        return
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(geom, kind, size, pos, mat, rgba)
    geom.specular = 0.0
    scene.ngeom += 1
