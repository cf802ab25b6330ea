"""The settings of a generated dataset: ``airhockey generate``'s ``GenerateConfig`` and ``airhockey data
shapes``' ``ShapesConfig``. Importing this module loads neither MuJoCo nor h5py."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airhockey.agents.files import bundled_for
from airhockey.errors import UserError
from airhockey.paths import check_output_dir


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that determines a generated dataset; equal configs give identical datasets.

    The number of worker processes is not here: it changes how fast, never what, is written.
    """

    episodes: int
    """Labelled episodes to write."""
    seed: int = 0
    """Generator seed: the root of every shard's seed sequence."""
    width: int = 64
    """Frame width in pixels."""
    height: int = 64
    """Frame height in pixels."""
    camera: str = "top"
    """Camera name: ``top`` or ``perspective``."""
    labels: str = "leftright"
    """``leftright``: classes left/right (buttons 0 and 4), other outcomes discarded;
    ``all``: class k is button k, misses discarded."""
    policy: str | None = None
    """``bundled`` (the agent trained for buttons 0 and 4), ``bundled-all`` (for any button), the
    path of a saved agent, or ``scripted`` (the baseline controller); None: the bundled agent
    trained for ``labels``."""
    shard_size: int = 50
    """Episodes per shard file (the last shard may hold fewer)."""
    lockstep_envs: int = 32
    """Envs each shard job plays in lockstep, sharing one batched policy call per step."""

    def __post_init__(self) -> None:
        from airhockey.generate.records import LABEL_MODES  # MuJoCo's env constants: not for --help

        for name in ("episodes", "width", "height", "shard_size", "lockstep_envs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if self.labels not in LABEL_MODES:
            raise UserError(f"labels must be one of {sorted(LABEL_MODES)}, got {self.labels!r}")
        if not 0 <= self.seed < 2**63:
            raise UserError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.policy is None:
            object.__setattr__(self, "policy", bundled_for(self.labels))

    @property
    def label_names(self) -> tuple[str, ...]:
        """Class names, by class index."""
        from airhockey.generate.records import LABEL_NAMES

        return LABEL_NAMES[self.labels]

    @property
    def num_shards(self) -> int:
        """Shard files in the finished dataset."""
        return -(-self.episodes // self.shard_size)

    def env_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``gym.make`` for the env that renders the stored frames."""
        return {
            "render_mode": "rgb_array",
            "width": self.width,
            "height": self.height,
            "camera_name": self.camera,
            "target_buttons": self.labels,
        }

    def to_dict(self) -> dict[str, Any]:
        """The fields, for JSON."""
        return asdict(self)


SHAPES = "shapes"
"""The ``policy`` of a shapes dataset's config, which ``data verify`` recognises it by."""


@dataclass(frozen=True)
class ShapesConfig:
    """Everything that determines a shapes dataset; equal configs give identical files."""

    episodes: int
    """Episodes to write."""
    shapes: int = 1
    """Shapes per episode: 1 (a disk) or 2 (a disk and a square)."""
    length: int = 40
    """Frames per episode."""
    seed: int = 0
    """Root of every episode's seed."""
    width: int = 64
    """Frame width in pixels."""
    height: int = 64
    """Frame height in pixels."""
    radius: tuple[float, float] = (4.0, 6.0)
    """Range of a shape's radius (half the square's side) in pixels, drawn uniformly per shape."""
    speed: tuple[float, float] = (1.0, 3.0)
    """Range of a shape's speed in pixels per frame, drawn uniformly per shape."""
    shard_size: int = 50
    """Episodes per shard file (the last shard may hold fewer)."""

    def __post_init__(self) -> None:
        for name in ("episodes", "length", "width", "height", "shard_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if self.shapes not in (1, 2):
            raise UserError(f"shapes must be 1 or 2, got {self.shapes!r}")
        if self.length < 2:
            raise UserError(f"length must be at least 2 frames, got {self.length}")
        if not 0 < self.radius[0] <= self.radius[1] or 4 * self.radius[1] >= min(self.width, self.height):
            raise UserError(
                f"radius must be a range 0 < low <= high < a quarter of the frame, got {self.radius}"
            )
        if not 0 < self.speed[0] <= self.speed[1]:
            raise UserError(f"speed must be a range 0 < low <= high, got {self.speed}")
        if not 0 <= self.seed < 2**63:
            raise UserError(f"seed must be a non-negative integer, got {self.seed!r}")

    def generate_config(self) -> GenerateConfig:
        """The dataset's ``GenerateConfig``, as the manifest and the shards record it (the frame size,
        the seed and the shards are this config's; the policy names the shapes)."""
        return GenerateConfig(
            self.episodes, self.seed, self.width, self.height, policy=SHAPES, shard_size=self.shard_size
        )

    def identity(self) -> dict[str, str]:
        """What made the motion, in the place of the policy's identity: these settings and their hash."""
        settings = json.dumps(asdict(self), sort_keys=True)
        return {"name": SHAPES, "sha256": hashlib.sha256(settings.encode()).hexdigest(), "settings": settings}


def check_settings(config: GenerateConfig, out_dir: str | Path) -> None:
    """Checks what a run needs before it touches the disk, so that a bad setting leaves nothing behind.

    The fields are checked when the config is made; here, what only trying can tell: that
    ``out_dir`` can be written, and that the env the frames come from can be made and renders a
    frame (the camera exists, the renderer can allocate a framebuffer of the frame size).

    Raises:
        UserError: one line naming the setting or the path.
    """
    from airhockey.generate.rollout import make_env  # gymnasium and MuJoCo: only when generating

    check_output_dir(out_dir, "dataset directory")
    try:
        env = make_env(config.env_kwargs())
        try:
            env.reset(seed=0)
            env.render()
        finally:
            env.close()
    except ValueError as err:  # the env's argument checks and its renderer's UserError
        raise UserError(str(err)) from None
