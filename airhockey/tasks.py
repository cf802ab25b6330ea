"""Task presets: named, versioned settings of a generated dataset, what ``airhockey generate --task``
and ``learn benchmark --tasks`` name.

A task says which outcomes are classes (``labels``), which policies play the episodes, which
visual nuisances are drawn per episode (``Nuisances``) and whether training and test data see the
same table layouts (``layouts``). ``leftright`` is the default and generates exactly what a
``GenerateConfig`` with no task does. Importing this module loads neither MuJoCo nor h5py.

A new task is one entry of ``TASKS``; ``Task.generate_config`` turns it into the settings of a
dataset, and ``airhockey generate --task NAME`` writes one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

from airhockey.errors import UserError
from airhockey.ranges import Range, check_fields


@dataclass(frozen=True)
class Nuisances:
    """Visual variation drawn per episode from the episode's seed; every knob at 0 changes nothing.

    Each knob is a strength in a documented range; what an episode drew is recorded with it (the
    env's ``episode_factors``). None of them moves the puck, the bar or the buttons' physics: they
    change what the camera sees, never what happens.
    """

    camera_jitter: Annotated[float, Range(0, 1)] = 0.0
    """Per-episode camera pose and zoom jitter, 0-1 (1: the largest offsets the env allows, see
    ``airhockey.envs.nuisances``)."""
    camera_shake: Annotated[float, Range(0, 1)] = 0.0
    """Small per-frame camera shake, 0-1 (1: the largest shake the env allows)."""
    lighting: Annotated[float, Range(0, 1)] = 0.0
    """Light intensity, colour and direction randomisation, 0-1."""
    colours: Annotated[float, Range(0, 1)] = 0.0
    """Colour randomisation of the table, bar and puck, 0-1 (1: any hue shift the env allows)."""
    distractors: Annotated[int, Range(0, 4)] = 0
    """Number of flat objects gliding across the table on their own paths, 0-4; drawn under the puck,
    the bar and the buttons, and never touching anything."""
    sensor_noise: Annotated[float, Range(0, 0.5)] = 0.0
    """Largest standard deviation of Gaussian pixel noise, as a fraction of the 0-255 range, 0-0.5;
    each episode draws one between half of it and all of it."""
    occluder: Annotated[float, Range(0, 0.5)] = 0.0
    """Side of an opaque floating square occluder as a fraction of the table's width, 0-0.5 (0: none);
    placed per episode, never over the buttons."""

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def active(self) -> bool:
        """Whether any knob is on."""
        return any(value != 0 for value in asdict(self).values())


LAYOUTS = ("fixed", "train", "test")
"""``fixed``: the table of the MJCF model; ``train`` / ``test``: button positions drawn per episode
from two disjoint sets of layouts (``airhockey.envs.layouts``), so that no test layout was seen in
training."""
SPLITS = ("train", "test")
"""The data a task's ``generate_config`` makes: for training or for testing."""
MID_NUISANCES = Nuisances(
    camera_jitter=0.5,
    camera_shake=0.5,
    lighting=0.5,
    colours=0.5,
    distractors=2,
    sensor_noise=0.06,
    occluder=0.25,
)
"""Every nuisance at a middle strength: what the ``_hard`` tasks draw."""


@dataclass(frozen=True)
class Task:
    """A named preset of a generated dataset (``TASKS``)."""

    name: str
    version: int
    """Bumped whenever the preset's settings change what it generates."""
    description: str
    labels: str = "leftright"
    """As ``GenerateConfig.labels``."""
    policy: str | None = None
    """As ``GenerateConfig.policy``; None: the bundled policy of ``labels``."""
    policy_mix: tuple[str, ...] = ()
    """Policies the episodes are spread over (recorded per episode); (): ``policy`` alone."""
    nuisances: Nuisances = field(default_factory=Nuisances)
    heldout_layouts: bool = False
    """Training data on ``train`` layouts, test data on ``test`` layouts (``LAYOUTS``)."""

    def to_dict(self) -> dict[str, Any]:
        """The preset as plain data, for manifests."""
        return asdict(self)

    def settings(self, split: str = "train") -> dict[str, Any]:
        """The ``GenerateConfig`` fields this preset sets, for data of ``split`` (``SPLITS``).

        Raises:
            UserError: for a split not in ``SPLITS``.
        """
        if split not in SPLITS:
            raise UserError(f"split must be one of {list(SPLITS)}, got {split!r}")
        from airhockey.agents.files import bundled_for  # no MuJoCo, no torch

        return {
            "labels": self.labels,
            "policy": self.policy
            or (self.policy_mix[0].removeprefix("noisy:") if self.policy_mix else bundled_for(self.labels)),
            "policy_mix": self.policy_mix,
            "nuisances": self.nuisances,
            "layouts": split if self.heldout_layouts else "fixed",
            "task": self.name,
            "task_version": self.version,
        }

    def generate_config(self, episodes: int, seed: int = 0, split: str = "train", **overrides: Any) -> Any:
        """The ``GenerateConfig`` of ``episodes`` episodes of this task's ``split`` data.

        Args:
            episodes: labelled episodes.
            seed: the generator seed.
            split: ``train`` or ``test``: which set of layouts a task with held-out layouts draws
                from (the other settings are the same for both).
            overrides: other ``GenerateConfig`` fields (frame size, camera, shard size, ...). A
                field the preset sets may be given only with the preset's own value.

        Raises:
            UserError: for an override that contradicts the preset, naming it, or an invalid one.
        """
        from airhockey.generate.config import GenerateConfig  # MuJoCo's constants: not for --help

        settings = self.settings(split)
        for name, value in overrides.items():
            if name in settings and value is not None and value != settings[name]:
                raise UserError(
                    f"{name}={value!r} contradicts task {self.name!r}, which sets {name}="
                    f"{settings[name]!r}: leave it out, or generate without --task"
                )
        return GenerateConfig(episodes=episodes, seed=seed, **{**overrides, **settings})


TASKS: dict[str, Task] = {
    "leftright": Task(
        "leftright",
        1,
        "The seed's task: does the puck go into the left or the right button (buttons 0 and 4).",
    ),
    "buttons5": Task(
        "buttons5",
        1,
        "Which of the five buttons the puck goes into (chance 20%), played by the scripted controller.",
        labels="all",
        policy="scripted",
    ),
    "leftright_hard": Task(
        "leftright_hard",
        1,
        "leftright under every visual nuisance at a middle strength, played by a mix of the agent, "
        "the scripted controller and the agent with noise and pauses.",
        policy_mix=("bundled", "scripted", "noisy:bundled"),
        nuisances=MID_NUISANCES,
    ),
    "buttons5_hard": Task(
        "buttons5_hard",
        1,
        "buttons5 under every visual nuisance at a middle strength, played by a mix of the agent "
        "for any button, the scripted controller and the scripted controller with noise and pauses.",
        labels="all",
        policy_mix=("bundled-all", "scripted", "noisy:scripted"),
        nuisances=MID_NUISANCES,
    ),
    "leftright_layouts": Task(
        "leftright_layouts",
        1,
        "leftright with the buttons moved: training data on one set of button layouts, test data on "
        "another, disjoint one; played by the scripted controller, which aims at the moved button.",
        policy="scripted",
        heldout_layouts=True,
    ),
}
"""Every task preset by name; ``leftright`` is the default."""
DEFAULT_TASK = "leftright"


def get_task(name: str) -> Task:
    """The preset named ``name``.

    Raises:
        UserError: for an unknown name, listing the known ones.
    """
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}: use one of {', '.join(TASKS)}")
    return TASKS[name]
