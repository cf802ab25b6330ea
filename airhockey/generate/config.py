"""The settings of a generated dataset: ``airhockey generate``'s ``GenerateConfig`` and ``airhockey data
shapes``' ``ShapesConfig``. Importing this module loads neither MuJoCo nor h5py."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

from airhockey.agents.files import bundled_for
from airhockey.errors import UserError
from airhockey.paths import check_output_dir
from airhockey.ranges import SEED_MAX, Range, check_fields, set_derived
from airhockey.tasks import LAYOUTS, Nuisances

NOISY = "noisy:"
"""Prefix of a noisy policy's spec in ``policy_mix``: ``noisy:<spec>`` plays ``<spec>`` with noise."""


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that determines a generated dataset; equal configs give identical datasets.

    The number of worker processes is not here: it changes how fast, never what, is written.
    """

    episodes: Annotated[int, Range(1, 10**7)]
    """Labelled episodes to write, 1 to 10^7."""
    seed: Annotated[int, Range(0, SEED_MAX)] = 0
    """Generator seed: the root of every shard's seed sequence."""
    width: Annotated[int, Range(16, 1024)] = 64
    """Frame width in pixels, 16-1,024."""
    height: Annotated[int, Range(16, 1024)] = 64
    """Frame height in pixels, 16-1,024."""
    camera: str = "top"
    """Camera name: ``top`` or ``perspective``."""
    labels: str = "leftright"
    """``leftright``: classes left/right (buttons 0 and 4), other outcomes discarded;
    ``all``: class k is button k, misses discarded."""
    policy: str | None = None
    """``bundled`` (the agent trained for buttons 0 and 4), ``bundled-all`` (for any button), the
    path of a saved agent, or ``scripted`` (the baseline controller); None: the bundled agent
    trained for ``labels``."""
    shard_size: Annotated[int, Range(1, 10**5)] = 50
    """Episodes per shard file (the last shard may hold fewer), 1 to 10^5."""
    lockstep_envs: Annotated[int, Range(1, 1024)] = 32
    """Envs each shard job plays in lockstep, sharing one batched policy call per step, 1-1,024."""
    policy_mix: tuple[str, ...] = ()
    """Policies the episodes are spread over, each episode's chosen from its reset seed and recorded
    with it: specs as ``policy`` takes, or ``noisy:<spec>`` (that policy's actions plus seeded
    Gaussian noise and pauses); (): ``policy`` plays every episode."""
    nuisances: Nuisances = field(default_factory=Nuisances)
    """Visual nuisances drawn per episode by the env (``airhockey.tasks.Nuisances``); none by default."""
    layouts: str = "fixed"
    """Button layouts (``airhockey.tasks.LAYOUTS``): ``fixed`` (the MJCF's), or one drawn per episode
    from the ``train`` or the ``test`` set, which are disjoint."""
    task: str | None = None
    """The task preset these settings come from (``airhockey.tasks.TASKS``), or None."""
    task_version: Annotated[int, Range(1, 10**6)] | None = None
    """That preset's version."""

    def __post_init__(self) -> None:
        from airhockey.generate.records import LABEL_MODES  # MuJoCo's env constants: not for --help

        if isinstance(self.nuisances, dict):  # as read back from JSON
            object.__setattr__(self, "nuisances", Nuisances(**self.nuisances))
        if isinstance(self.policy_mix, list):
            object.__setattr__(self, "policy_mix", tuple(self.policy_mix))
        check_fields(self)
        if self.labels not in LABEL_MODES:
            raise UserError(f"labels must be one of {sorted(LABEL_MODES)}, got {self.labels!r}")
        if self.layouts not in LAYOUTS:
            raise UserError(f"layouts must be one of {list(LAYOUTS)}, got {self.layouts!r}")
        if not isinstance(self.nuisances, Nuisances):
            raise UserError(f"nuisances must be a Nuisances, got {self.nuisances!r}")
        if not all(isinstance(spec, str) and spec.removeprefix(NOISY) for spec in self.policy_mix):
            raise UserError(f"policy_mix must hold policy specs, got {self.policy_mix!r}")
        if self.policy is None:
            first = self.policy_mix[0].removeprefix(NOISY) if self.policy_mix else bundled_for(self.labels)
            set_derived(self, "policy", first)

    @property
    def label_names(self) -> tuple[str, ...]:
        """Class names, by class index."""
        from airhockey.generate.records import LABEL_NAMES

        return LABEL_NAMES[self.labels]

    @property
    def policies(self) -> tuple[str, ...]:
        """The policy specs an episode's recorded ``policy`` indexes: ``policy_mix``, or ``(policy,)``."""
        return self.policy_mix or (str(self.policy),)

    @property
    def num_shards(self) -> int:
        """Shard files in the finished dataset."""
        return -(-self.episodes // self.shard_size)

    def env_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``gym.make`` for the env that renders the stored frames."""
        kwargs: dict[str, Any] = {
            "render_mode": "rgb_array",
            "width": self.width,
            "height": self.height,
            "camera_name": self.camera,
            "target_buttons": self.labels,
        }
        if self.nuisances.active:  # only where set, so a dataset without them has the kwargs it had
            kwargs["nuisances"] = asdict(self.nuisances)
        if self.layouts != "fixed":
            kwargs["layout"] = self.layouts
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """The fields, for JSON (as JSON gives them back: ``policy_mix`` a list)."""
        return {**asdict(self), "policy_mix": list(self.policy_mix)}


SHAPES = "shapes"
"""The ``policy`` of a shapes dataset's config, which ``data verify`` recognises it by."""


RADIUS = (4.0, 6.0)
"""The shapes' radius range in pixels on frames of 64 pixels or more (``ShapesConfig.radius``)."""


@dataclass(frozen=True)
class ShapesConfig:
    """Everything that determines a shapes dataset; equal configs give identical files."""

    episodes: Annotated[int, Range(1, 10**7)]
    """Episodes to write, 1 to 10^7."""
    shapes: Annotated[int, Range(1, 2)] = 1
    """Shapes per episode: 1 (a disk) or 2 (a disk and a square)."""
    length: Annotated[int, Range(2, 10**5)] = 40
    """Frames per episode, 2 to 10^5."""
    seed: Annotated[int, Range(0, SEED_MAX)] = 0
    """Root of every episode's seed."""
    width: Annotated[int, Range(16, 1024)] = 64
    """Frame width in pixels, 16-1,024."""
    height: Annotated[int, Range(16, 1024)] = 64
    """Frame height in pixels, 16-1,024."""
    radius: tuple[Annotated[float, Range(0, 256, low_open=True)], ...] | None = None
    """Range (low, high) of a shape's radius (half the square's side) in pixels, drawn uniformly per
    shape; high below a quarter of the frame's smaller side. None (the default): ``RADIUS``, scaled
    down with frames smaller than 64 pixels so that it fits."""
    speed: tuple[Annotated[float, Range(0, 1000, low_open=True)], ...] = (1.0, 3.0)
    """Range (low, high) of a shape's speed in pixels per frame, drawn uniformly per shape, in (0, 1000]."""
    shard_size: Annotated[int, Range(1, 10**5)] = 50
    """Episodes per shard file (the last shard may hold fewer), 1 to 10^5."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.radius is None:
            scale = min(1.0, min(self.width, self.height) / 64)
            set_derived(self, "radius", (RADIUS[0] * scale, RADIUS[1] * scale))
        radius = self.radius or RADIUS
        if len(radius) != 2 or not radius[0] <= radius[1] or 4 * radius[1] >= min(self.width, self.height):
            raise UserError(
                f"radius must be a range 0 < low <= high < a quarter of the frame, got {self.radius}"
            )
        if len(self.speed) != 2 or not self.speed[0] <= self.speed[1]:
            raise UserError(f"speed must be a range 0 < low <= high, got {self.speed}")

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
