"""Exporting a dataset to the formats other tools read (``airhockey data export DATA --to FORMAT OUT``).

- ``minari``: a Minari dataset (``minari.load_dataset`` with ``MINARI_DATASETS_PATH=OUT``): per
  episode its seed and reset options, observations ``{"state", "pixels"}`` (T, ...), actions,
  rewards, terminations and truncations (T - 1, ...), the env's ``info`` and the per-frame state
  as infos (T, ...), the labels as episode metadata; the env spec that replays it.
- ``hf``: a Hugging Face ``datasets`` dataset written with ``save_to_disk`` (``load_from_disk(OUT)``),
  one row per episode (``hf_format.episode_features``).

Both hold the frames bit for bit, the labels and events, the actions, and the rewards,
terminations and truncations that the shards do not store: every episode is replayed from its
seed (``replay``), and the replay must give back the stored frames exactly. The frame rate is
recorded (``fps``: one frame per control step). The LeRobot layout is not offered: its library
(``lerobot``) requires a torch older than the one this package is tested with.

Both libraries come with the package's ``export`` extra. The export is written into a hidden
directory beside OUT and renamed to OUT when complete, so OUT is never half-written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import airhockey
from airhockey.errors import UserError
from airhockey.extras import require
from airhockey.generate.export.replay import export_env, frames_per_second, replay_episode
from airhockey.generate.shards import EpisodeShards, open_shards
from airhockey.paths import check_output_dir
from airhockey.writing import disk_errors, refuse_link

FORMATS = {"minari": "minari", "hf": "datasets"}
"""Export format -> the module it needs (from the ``export`` extra)."""
NOT_OFFERED = {
    "lerobot": "the LeRobot layout is not offered: the lerobot library requires an older torch (< 2.11) "
    "than this package uses; export --to hf and convert with LeRobot's own tools"
}
"""Formats users ask for that are left out, and why."""


@dataclass
class Export:
    """What ``export_dataset`` wrote."""

    format: str
    """``minari`` or ``hf``."""
    out: Path
    """The directory written."""
    episodes: int
    """Episodes exported."""
    fps: float
    """Frames per second of the episodes."""
    dataset_id: str | None = None
    """The Minari dataset id (``minari`` only)."""


def check_format(fmt: str) -> None:
    """Checks that ``fmt`` is an export format and that the library it needs is installed.

    Raises:
        UserError: for an unknown or left-out format; ``extras.MissingExtra`` for a missing library,
            naming the extra.
    """
    if fmt in NOT_OFFERED:
        raise UserError(f"--to {fmt}: {NOT_OFFERED[fmt]}")
    if fmt not in FORMATS:
        raise UserError(f"--to must be one of {', '.join(FORMATS)}, got {fmt!r}")
    require(FORMATS[fmt], f"data export --to {fmt}", prefer="export")


def check_export_dir(out: Path) -> None:
    """Checks that ``out`` is a new or empty directory this process can create.

    Raises:
        UserError: when ``out`` is a link, a file, a directory with contents, or cannot be created.
    """
    refuse_link(out, "export directory")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"{out}: the export directory exists and is not empty: name a new or empty directory")
    check_output_dir(out, "export directory")


def default_dataset_id(data: Path) -> str:
    """The Minari id of an export of ``data``: ``airhockey/<its folder name>-v0``."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", data.absolute().name).strip("_-") or "episodes"
    return f"airhockey/{name}-v0"


def _open_source(data: Path) -> EpisodeShards:
    """The dataset to export, opened; refused unless its episodes were played in the env."""
    episodes = open_shards(data)
    if episodes.attrs.get("config", {}).get("policy") == "shapes":
        episodes.close()
        raise UserError(
            f"{data}: a moving-shapes dataset has no env to replay: only datasets of "
            "`airhockey generate` can be exported"
        )
    if len(episodes) == 0:
        episodes.close()
        raise UserError(f"{data}: the dataset holds no episodes: nothing to export")
    return episodes


def export_dataset(data: str | Path, fmt: str, out: str | Path, dataset_id: str | None = None) -> Export:
    """Exports every episode of the dataset ``data`` to ``out`` in the format ``fmt``.

    Args:
        data: a dataset directory (or shard file) of ``airhockey generate``.
        fmt: ``minari`` or ``hf`` (``FORMATS``).
        out: the directory to write; new or empty. For ``minari`` it becomes a Minari datasets
            root, the dataset at ``out/<dataset_id>/data``.
        dataset_id: the Minari dataset id; default ``default_dataset_id(data)``. Only for ``minari``.

    Returns:
        What was written.

    Raises:
        UserError: for a bad option or output directory (checked before anything is written), a
            dataset that cannot be read or replayed bit for bit, or a full disk.
    """
    # Absolute: Minari resolves its datasets root against paths it builds itself, so a relative
    # root would be joined twice.
    data, out = Path(data), Path(out).absolute()
    check_format(fmt)
    if dataset_id is not None and fmt != "minari":
        raise UserError(f"--dataset-id names a Minari dataset: it has no meaning with --to {fmt}")
    check_export_dir(out)
    if fmt == "minari":
        from airhockey.generate.export.minari_format import check_dataset_id

        dataset_id = dataset_id or default_dataset_id(data)
        check_dataset_id(dataset_id)
    with _open_source(data) as episodes:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
        try:
            with disk_errors(out):
                count, fps = _write(data, episodes, fmt, staging, dataset_id)
                if out.is_dir():
                    out.rmdir()  # empty, as checked; fails rather than lose files written since
                os.rename(staging / "out", out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Export(fmt, out, count, fps, dataset_id)


def _write(
    data: Path, episodes: EpisodeShards, fmt: str, staging: Path, dataset_id: str | None
) -> tuple[int, float]:
    """Writes the export into ``staging / "out"``; returns the episodes written and the fps."""
    env = export_env(episodes.attrs["env_kwargs"])
    try:
        fps = frames_per_second(env)
        source = {
            "source": data.absolute().name,
            "fingerprint": episodes.fingerprint,
            "label_names": episodes.label_names,
            "fps": fps,
            "package_version": episodes.attrs.get("package_version"),
            "policy": episodes.attrs.get("policy"),
            "config": episodes.attrs.get("config"),
            "env_kwargs": episodes.attrs.get("env_kwargs"),
        }
        description = (
            f"{airhockey.ENV_ID} episodes of {data.absolute().name}, exported by airhockey "
            f"{airhockey.__version__}: {len(episodes)} episodes at {fps:g} frames per second, labelled "
            f"{', '.join(episodes.label_names)} by the button the puck hit."
        )
        if fmt == "minari":
            from airhockey.generate.export.minari_format import write_minari

            replayed = (replay_episode(env, episodes, i) for i in range(len(episodes)))
            count = write_minari(replayed, staging / "out", str(dataset_id), env, description, source)
        else:
            from airhockey.generate.export.hf_format import episode_features, write_hf

            height, width = episodes.frames(0, 0, 1).shape[1:3]
            features = episode_features(episodes.label_names, height, width)
            scratch = staging / "cache"
            described = (
                f"{description} Source: {json.dumps(source)}"  # a datasets dataset has no other metadata
            )
            count = write_hf(data, staging / "out", scratch, features, fps, described)
    finally:
        env.close()
    return count, fps
