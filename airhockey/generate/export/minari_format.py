"""Writing replayed episodes as a Minari dataset (``airhockey data export DATA --to minari OUT``).

Through Minari's own ``create_dataset_from_buffers``, into a datasets root of its own (what
``MINARI_DATASETS_PATH`` names), with raw image arrays (``jpeg_encoding=False``: Minari's default
JPEG encoding would change every frame).
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym

import airhockey
from airhockey.errors import UserError
from airhockey.generate.export.replay import ReplayedEpisode

BATCH = 16
"""Episodes handed to Minari at a time: memory stays that of a few episodes, whatever the dataset's size."""
EPISODE_METADATA = ("label", "hit_button", "target", "hit_frame", "strike_frame")
"""The per-episode integers stored with each Minari episode (besides its ``seed`` and ``options``)."""


def check_dataset_id(dataset_id: str) -> None:
    """Checks a Minari dataset id (``namespace/name-vN``) with Minari's own parser.

    Raises:
        UserError: naming the id and the form it must take.
    """
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        version = parse_dataset_id(dataset_id)[2]
    except (ValueError, TypeError):  # TypeError: Minari's parser on an id without -vN
        version = None
    if version is None:
        raise UserError(
            f"--dataset-id {dataset_id!r} is not a Minari dataset id: write namespace/name-vN, e.g. "
            "airhockey/agent200-v0 (letters, digits, _ and - in the name)"
        )


@contextmanager
def _datasets_root(root: Path) -> Iterator[None]:
    """Minari writes where ``MINARI_DATASETS_PATH`` says: ``root`` within the block, restored after."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if before is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def _buffer(episode: ReplayedEpisode) -> Any:
    """One episode as Minari's ``EpisodeBuffer``: observations and infos (T, ...), the rest (T - 1, ...)."""
    from minari.data_collector import EpisodeBuffer

    return EpisodeBuffer(
        seed=episode.scalars["seed"],
        options={"target": episode.scalars["target"]},
        observations={"state": episode.states, "pixels": episode.frames},
        actions=episode.actions,
        rewards=episode.rewards,
        terminations=episode.terminations,
        truncations=episode.truncations,
        infos={**episode.infos, **episode.physical},
    )


def write_minari(
    episodes: Iterable[ReplayedEpisode],
    root: Path,
    dataset_id: str,
    env: gym.Env,
    description: str,
    metadata: dict[str, Any],
) -> int:
    """Writes the episodes as the Minari dataset ``dataset_id`` under the datasets root ``root``.

    Args:
        episodes: the replayed episodes, in order (exported episode i is ``id`` i of the source).
        root: the datasets root to write into (the dataset lands in ``root/<dataset_id>/data``).
        dataset_id: the Minari id, checked with ``check_dataset_id``.
        env: the env the episodes were replayed in (``replay.export_env``): its spec is recorded.
        description: the dataset's description.
        metadata: JSON values stored under the key ``airhockey`` of the dataset's metadata.

    Returns:
        The number of episodes written.
    """
    import minari

    dataset = None
    scalars = []
    with _datasets_root(root), warnings.catch_warnings():
        # Minari warns of every optional field left out (author, e-mail, code link, eval env).
        warnings.filterwarnings("ignore", category=UserWarning, module=r"minari(\.|$)")
        for batch in _batches(episodes, BATCH):
            buffers = [_buffer(episode) for episode in batch]
            scalars += [{name: episode.scalars[name] for name in EPISODE_METADATA} for episode in batch]
            if dataset is None:
                dataset = minari.create_dataset_from_buffers(
                    dataset_id,
                    buffers,
                    env=env,
                    algorithm_name=(metadata.get("policy") or {}).get("name"),
                    description=description,
                    requirements=[f"airhockey=={airhockey.__version__}"],
                    jpeg_encoding=False,
                )
            else:
                dataset.update_dataset_from_buffer(buffers)
        if dataset is None:
            raise UserError("the dataset holds no episodes: nothing to export")
        dataset.storage.update_episode_metadata(scalars)
        dataset.storage.update_metadata({"airhockey": metadata})
    return len(scalars)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
