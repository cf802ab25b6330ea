"""A moving-shapes sanity dataset in the shard format of ``airhockey generate`` (``airhockey data shapes``).

Leuschner and Scheffczyk 2020 (section 4: a translating circle) and Srivastava et al. 2015
(section 3.2: bouncing digits) check a video model on synthetic motion whose right answer is known
before trusting it on real data. Here one or two shapes (a red disk, then a blue square) move at
constant speed in a box and bounce off its walls; frames are drawn with numpy at the air-hockey
frame size. Each episode is a function of ``(seed, episode index)`` alone.

The episodes are ``EpisodeRecord``s written by ``ShardWriter`` with a manifest from
``build_manifest``, so every reader (``open_shards``, ``learn``, ``airhockey data
verify|inspect|preview``) takes them as they are. The fields mean:

- ``puck_pos``, ``puck_vel`` (T, 2): the first shape's centre (x, y) in pixels from the frame's
  top-left corner, and its velocity in pixels per frame; ``bar_pos``, ``bar_vel``: the second
  shape's (NaN with one shape). ``actions`` are zeros and no button is ever lit.
- ``label``: the direction of the first shape's horizontal motion at the last frame, 0 left and 1
  right (``leftright``'s names); classes are balanced (episode i has class i % 2) by mirroring an
  episode left-right where its class is the other one.
- ``hit_frame``: the first frame from which the first shape moves in that direction to the end
  (after its last bounce off a side wall), where the label can be read off the frames, as a lit
  button is for air hockey; ``hit_button`` -1, ``target`` the label, ``seed`` the episode's seed.
- Events: ``rim_contact`` marks the frames reached by a bounce of the first shape off a wall since
  the frame before; nothing strikes the shapes and there are no buttons, so ``bar_contact`` and
  ``button_contact`` are never set and ``strike_frame`` is -1 (what ``data verify`` expects).
- The config's ``policy`` is ``shapes`` and the policy identity ``{"name": "shapes", "sha256": ...,
  "settings": ...}`` (these settings as JSON); ``data verify`` knows a shapes dataset by that and
  checks each label against the stored velocities (``check_shapes_labels``). ``env_id`` and
  ``env_kwargs`` stay those a ``GenerateConfig`` of the same frame size gives (readers check that
  they follow from the config; ``data preview`` takes its frame rate from them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

import airhockey
from airhockey.envs import N_BUTTONS
from airhockey.errors import UserError
from airhockey.generate.config import ShapesConfig
from airhockey.generate.hdf5 import ShardWriter, sha256_file
from airhockey.generate.jobs import ShardEntry, plan_shards
from airhockey.generate.manifest import build_manifest, write_manifest
from airhockey.generate.records import EpisodeRecord

BACKGROUND = (25, 25, 35)
"""RGB of the box."""
COLOURS = ((230, 60, 50), (60, 120, 230))
"""RGB of the first shape (a disk) and the second (a square)."""
MIN_HORIZONTAL = 0.3
"""Least |cos| of a shape's direction of motion, so that every shape moves sideways."""


def bounce(
    start: NDArray[np.float64], velocity: NDArray[np.float64], low: NDArray, high: NDArray, length: int
):
    """Positions and velocities of a point moving at constant speed between walls, reflected at them.

    Args:
        start: (2,) the position at frame 0, within ``[low, high]``.
        velocity: (2,) the velocity at frame 0, per frame.
        low, high: (2,) the walls: the lowest and highest position on each axis.
        length: frames.

    Returns:
        ``(positions, velocities)``, each (length, 2) float64.
    """
    span = high - low
    # Unfold the reflections: free motion u, folded back into [0, span] with period 2 span.
    u = np.mod(start - low + velocity * np.arange(length)[:, None], 2 * span)  # (T, 2)
    forward = u < span
    positions = low + np.where(forward, u, 2 * span - u)
    velocities = np.where(forward, velocity, -velocity)
    return positions, velocities


def draw(
    positions: NDArray[np.float64], radii: NDArray[np.float64], width: int, height: int
) -> NDArray[np.uint8]:
    """Frames of the shapes at their positions: (T, S, 2) centres (x, y) and (S,) radii -> (T, H, W, 3).

    Shape 0 is a disk, shape 1 a square (the pixels whose centres lie within the radius, in the
    Euclidean and the max norm), drawn in that order, so the square passes over the disk.
    """
    ys, xs = np.mgrid[0:height, 0:width] + 0.5  # pixel centres
    frames = np.empty((len(positions), height, width, 3), np.uint8)
    frames[:] = BACKGROUND
    for s in range(positions.shape[1]):
        dx = xs[None] - positions[:, s, 0, None, None]  # (T, H, W)
        dy = ys[None] - positions[:, s, 1, None, None]
        inside = np.hypot(dx, dy) <= radii[s] if s == 0 else np.maximum(abs(dx), abs(dy)) <= radii[s]
        frames[inside] = COLOURS[s]
    return frames


def readable_from(velocity_x: NDArray[np.float64]) -> int:
    """The first frame from which the horizontal velocity keeps its final sign to the end."""
    final = np.sign(velocity_x[-1])
    changed = np.flatnonzero(np.sign(velocity_x) != final)
    return int(changed[-1] + 1) if changed.size else 0


def shapes_episode(config: ShapesConfig, index: int) -> EpisodeRecord:
    """Episode ``index`` of the dataset: drawn from ``SeedSequence([config.seed, index])`` alone.

    Its class is ``index % 2``: an episode whose first shape ends moving the other way is mirrored
    left-right (which keeps it a valid bouncing motion).
    """
    episode_seed = int(np.random.SeedSequence([config.seed, index]).generate_state(1, np.uint32)[0])
    rng = np.random.default_rng(episode_seed)
    size = np.array([config.width, config.height], np.float64)
    radii = rng.uniform(*config.radius, config.shapes)
    positions, velocities = [], []
    for radius in radii:
        angle = rng.uniform(0, 2 * np.pi)
        while abs(np.cos(angle)) < MIN_HORIZONTAL:
            angle = rng.uniform(0, 2 * np.pi)
        velocity = rng.uniform(*config.speed) * np.array([np.cos(angle), np.sin(angle)])
        start = rng.uniform(radius, size - radius)
        p, v = bounce(start, velocity, np.full(2, radius), size - radius, config.length)
        positions.append(p)
        velocities.append(v)
    pos, vel = np.stack(positions, axis=1), np.stack(velocities, axis=1)  # (T, S, 2)
    label = index % 2
    if int(vel[-1, 0, 0] > 0) != label:
        pos[..., 0] = config.width - pos[..., 0]
        vel[..., 0] = -vel[..., 0]
    t = config.length
    second = (pos[:, 1], vel[:, 1]) if config.shapes == 2 else (np.full((t, 2), np.nan),) * 2
    return EpisodeRecord(
        id=index,
        seed=episode_seed,
        target=label,
        hit_button=-1,
        hit_frame=readable_from(vel[:, 0, 0]),
        strike_frame=-1,
        label=label,
        frames=draw(pos, radii, config.width, config.height),
        actions=np.zeros((t - 1, 2), np.float32),
        bar_pos=second[0],
        bar_vel=second[1],
        puck_pos=pos[:, 0],
        puck_vel=vel[:, 0],
        buttons_lit=np.zeros((t, N_BUTTONS), bool),
        bar_contact=np.zeros(t, bool),
        # A bounce between two frames turns a velocity component around.
        rim_contact=np.concatenate([[False], (vel[1:, 0] != vel[:-1, 0]).any(axis=1)]),
        button_contact=np.zeros(t, bool),
    )


def generate_shapes(config: ShapesConfig, out_dir: str | Path) -> dict[str, Any]:
    """Writes a shapes dataset into ``out_dir``: shards of ``config.shard_size`` episodes and a manifest.

    Args:
        config: what to write.
        out_dir: the dataset directory; it must be new or empty.

    Returns:
        The manifest.

    Raises:
        UserError: when ``out_dir`` is not empty.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise UserError(f"{out_dir} is not empty: choose a new directory")
    generate, identity = config.generate_config(), config.identity()
    entries = []
    for job in plan_shards(generate, identity):
        path = out_dir / job.filename
        with ShardWriter(path) as writer:
            records = [
                shapes_episode(config, i) for i in range(job.first_episode, job.first_episode + job.episodes)
            ]
            for record in records:
                writer.add(record)
            counts = np.bincount([r.label for r in records], minlength=2).astype(np.int64)
            frames = sum(len(r.frames) for r in records)
            writer.finish(
                {
                    "package_version": airhockey.__version__,
                    "env_id": airhockey.ENV_ID,
                    "env_kwargs": generate.env_kwargs(),
                    "policy": identity,
                    "generator_seed": config.seed,
                    "config": generate.to_dict(),
                    "shard_index": job.index,
                    "first_episode": job.first_episode,
                    "label_names": list(generate.label_names),
                    "episodes": len(records),
                    "frames": frames,
                    "class_counts": counts,
                    "attempts": len(records),
                    "discards": {},
                }
            )
        entries.append(
            ShardEntry(
                path.name,
                job.index,
                len(records),
                frames,
                counts.tolist(),
                len(records),
                {},
                path.stat().st_size,
                sha256_file(path),
            )
        )
    manifest = build_manifest(generate, identity, entries)
    write_manifest(out_dir, manifest)
    return manifest


def check_shapes_labels(f: h5py.File, table: dict[str, NDArray[np.int64]]) -> list[str]:
    """Problems of a shapes shard's labels against its stored states: each episode's label must be
    the direction of ``puck_vel``'s x at its last frame, ``hit_frame`` where that direction holds
    from, ``hit_button`` -1 and no button lit."""
    velocity_x, lit = f["puck_vel"][:, 0], f["buttons_lit"][()]
    problems = []
    for i, (start, length) in enumerate(zip(table["frame_start"], table["length"], strict=True)):
        vx = velocity_x[start : start + length]
        expected = (int(vx[-1] > 0), readable_from(vx), -1)
        stored = (int(table["label"][i]), int(table["hit_frame"][i]), int(table["hit_button"][i]))
        if stored != expected:
            problems.append(
                f"episode {i}: label, hit_frame, hit_button are {stored}; "
                f"the first shape's velocities make {expected}"
            )
        if lit[start : start + length].any():
            problems.append(f"episode {i}: a button is lit in a shapes episode")
    return problems
