"""Writing replayed episodes as a Hugging Face ``datasets`` dataset (``data export DATA --to hf OUT``).

One row per episode, every column declared (``episode_features``): the frames as an ``Array4D``
of uint8 (stored as they are, so bit for bit), the label as a ``ClassLabel``, per-frame and
per-step arrays as ``Array2D`` or lists. Built with ``Dataset.from_generator`` (episodes are
replayed one at a time into an Arrow cache) and written with ``save_to_disk``; read it back with
``datasets.load_from_disk(OUT)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from airhockey.envs import N_BUTTONS
from airhockey.envs.airhockey_v0 import REWARD_KEYS, STATE_SIZE
from airhockey.errors import UserError
from airhockey.generate.export.replay import PHYSICAL_FIELDS, ReplayedEpisode, export_env, replay_episode
from airhockey.generate.shards import open_shards

SCALAR_COLUMNS = ("episode", "seed", "target", "label", "hit_button", "hit_frame", "strike_frame", "length")
"""The per-episode integers; ``episode`` is the episode's index in the source dataset (its ``id``)."""


def episode_features(label_names: Sequence[str], height: int, width: int) -> Any:
    """The ``datasets.Features`` of an exported episode: T frames, T - 1 steps.

    Columns: ``SCALAR_COLUMNS`` (int64; ``label`` a ``ClassLabel`` over ``label_names``), ``fps``
    (float64), ``frames`` (T, H, W, 3) uint8, ``state`` (T, 13) float64 observations, the per-frame
    ``bar_pos``, ``bar_vel``, ``puck_pos``, ``puck_vel`` (T, 2) float64, ``buttons_lit`` (T, 5)
    bool and events ``bar_contact``, ``rim_contact``, ``button_contact`` (T,) bool; per step
    ``actions`` (T - 1, 2) float32, ``rewards`` and each ``reward_<term>`` (T - 1,) float64,
    ``terminations`` and ``truncations`` (T - 1,) bool.
    """
    from datasets import Array2D, Array4D, ClassLabel, Features, List, Value

    columns: dict[str, Any] = {name: Value("int64") for name in SCALAR_COLUMNS}
    columns["label"] = ClassLabel(names=list(label_names))
    columns["fps"] = Value("float64")
    columns["frames"] = Array4D(shape=(None, height, width, 3), dtype="uint8")
    columns["state"] = Array2D(shape=(None, STATE_SIZE), dtype="float64")
    for name in PHYSICAL_FIELDS:
        if name == "buttons_lit":
            columns[name] = Array2D(shape=(None, N_BUTTONS), dtype="bool")
        elif name.endswith(("_pos", "_vel")):
            columns[name] = Array2D(shape=(None, 2), dtype="float64")
        else:
            columns[name] = List(Value("bool"))
    columns["actions"] = Array2D(shape=(None, 2), dtype="float32")
    for name in ("rewards", *REWARD_KEYS.values()):
        columns[name] = List(Value("float64"))
    columns["terminations"] = List(Value("bool"))
    columns["truncations"] = List(Value("bool"))
    return Features(columns)


def episode_row(episode: ReplayedEpisode, fps: float) -> dict[str, Any]:
    """One replayed episode as a row of ``episode_features``."""
    row: dict[str, Any] = {
        name: episode.scalars["id" if name == "episode" else name] for name in SCALAR_COLUMNS
    }
    row.update(fps=fps, frames=episode.frames, state=episode.states, actions=episode.actions)
    row.update(episode.physical)
    row.update(rewards=episode.rewards, terminations=episode.terminations, truncations=episode.truncations)
    row.update({key: episode.infos[key][1:] for key in REWARD_KEYS.values()})  # the reset has no reward
    return row


def _rows(data: str, fps: float) -> Iterator[dict[str, Any]]:
    """Every episode of the dataset ``data``, replayed, as rows (a generator for ``from_generator``)."""
    with open_shards(data) as episodes:
        env = export_env(episodes.attrs["env_kwargs"])
        try:
            for index in range(len(episodes)):
                yield episode_row(replay_episode(env, episodes, index), fps)
        finally:
            env.close()


def write_hf(data: Path, out: Path, scratch: Path, features: Any, fps: float, description: str) -> int:
    """Writes every episode of the dataset ``data`` as a ``datasets`` dataset saved to ``out``.

    Args:
        data: the source dataset directory.
        out: the directory ``save_to_disk`` writes (it must not exist).
        scratch: an empty directory for the Arrow cache that ``from_generator`` builds.
        features: ``episode_features`` of the dataset.
        fps: frames per second, stored in every row.
        description: the dataset's ``info.description``.

    Returns:
        The number of episodes written.

    Raises:
        UserError: from the replay (an episode that does not replay to its stored frames).
    """
    import datasets
    from datasets.exceptions import DatasetGenerationError

    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        try:
            dataset = datasets.Dataset.from_generator(
                _rows, features=features, cache_dir=str(scratch), gen_kwargs={"data": str(data), "fps": fps}
            )
        except DatasetGenerationError as error:
            if isinstance(error.__cause__, UserError):
                raise error.__cause__ from None
            raise
        dataset.info.description = description
        dataset.save_to_disk(str(out))
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    return len(dataset)
