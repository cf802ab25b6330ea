"""Checking, summarising and previewing a generated dataset (``airhockey data verify|inspect|preview``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from airhockey.envs import EVENTS
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig
from airhockey.generate.hdf5 import (
    episode_table,
    index_problems,
    open_shard,
    sha256_file,
    shard_attrs,
    shard_version,
    unfinished,
)
from airhockey.generate.manifest import build_manifest, read_manifest, shard_entries
from airhockey.generate.records import (
    EVENTS_VERSION,
    LABEL_MODES,
    first_frame,
    first_lit_frame,
    label_of_button,
)
from airhockey.generate.rollout import make_env
from airhockey.generate.shapes import check_shapes_labels
from airhockey.generate.shards import open_shards
from airhockey.generate.untrusted import manifest_expectations
from airhockey.video import check_video_path, text_banner, write_video


@dataclass
class Verification:
    """The outcome of ``verify_dataset``."""

    shards: int = 0
    """Shard files checked."""
    episodes: int = 0
    """Episodes checked."""
    problems: list[str] = field(default_factory=list)
    """One line per problem, each starting with the file it concerns."""

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems


def dataset_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a dataset directory.

    Raises:
        UserError: when ``path`` is not a directory holding a readable manifest.
    """
    path = Path(path)
    manifest = read_manifest(path) if path.is_dir() else None
    if manifest is None:
        raise UserError(f"{path}: not a generated dataset directory (no manifest.json)")
    return manifest


def verify_dataset(path: str | Path) -> Verification:
    """Checks a dataset directory: checksums, schema, counts, and every label against the frames' states.

    Args:
        path: the dataset directory.

    Returns:
        What was checked and the problems found (none for a sound, complete dataset).

    Raises:
        UserError: when ``path`` is not a dataset directory with a readable manifest.
    """
    path = Path(path)
    manifest = dataset_manifest(path)
    config = GenerateConfig(**manifest["config"])
    result = Verification()
    if not manifest["complete"]:
        result.problems.append(
            f"{path}: incomplete ({len(manifest['shards'])} of {config.num_shards} shards): "
            "rerun the same `airhockey generate` command with --resume"
        )
    listed = {entry["file"] for entry in manifest["shards"]}
    for stray in sorted(p.name for p in path.glob("shard-*.h5") if p.name not in listed):
        result.problems.append(f"{stray}: not listed in the manifest")
    for entry, expected in zip(manifest["shards"], manifest_expectations(manifest), strict=True):
        result.shards += 1
        result.episodes += entry["episodes"]
        problems = _check_shard(path / entry["file"], entry, expected)
        result.problems.extend(f"{entry['file']}: {p}" for p in problems)
    expected = build_manifest(config, manifest["policy"], shard_entries(manifest))
    for name in ("complete", "episodes", "frames", "class_counts", "attempts", "discards"):
        if manifest[name] != expected[name]:
            result.problems.append(
                f"manifest.json: {name} is {manifest[name]}, its shards make {expected[name]}"
            )
    return result


def _check_shard(path: Path, entry: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Problems of one shard against its manifest entry and what the manifest says of it
    (``untrusted.manifest_expectations``), which ``open_shard`` checks before any read."""
    if not path.is_file():
        return ["missing"]
    if sha256_file(path) != entry["sha256"]:
        writing = unfinished(path)  # a writer changes the file: say so rather than "corrupt"
        if writing is not None:
            return [str(writing).removeprefix(f"{path}: ")]
        return ["SHA-256 differs from the manifest: the file changed or is corrupt since it was written"]
    try:
        with open_shard(path, expected) as f:
            return check_shard_contents(f)
    except UserError as err:
        return [str(err).removeprefix(f"{path}: ")]
    except (OSError, KeyError, ValueError, TypeError) as err:
        return [f"unreadable ({type(err).__name__}: {err})"]


def check_shard_contents(f: h5py.File) -> list[str]:
    """Problems of the contents of a shard opened by ``open_shard`` (which has checked its
    attributes and its datasets' storage, dtypes and shapes): the episode table against the
    attributes, counts, every label against the per-frame button states, and (format 2 on) the
    strike and hit frames against the per-frame contact events.
    """
    version = shard_version(f)
    attrs = shard_attrs(f)
    labels = attrs["config"]["labels"]
    table = episode_table(f)
    problems = index_problems(table, attrs)
    if problems:
        return problems
    n_episodes = len(table["length"])
    counts = np.bincount(table["label"].clip(0), minlength=len(LABEL_MODES[labels])).tolist()
    stated = attrs["class_counts"]
    if counts != stated or attrs["episodes"] != n_episodes:
        problems.append(f"the episode table's labels count {counts}, the attributes say {stated}")
    if version >= EVENTS_VERSION:
        problems += _check_events(f, table)
    if attrs["config"].get("policy") == "shapes":  # labelled by motion, not by buttons
        return problems + check_shapes_labels(f, table)
    lit = f["buttons_lit"][()]
    for i in range(n_episodes):
        row = {name: int(values[i]) for name, values in table.items()}
        episode_lit = lit[row["frame_start"] : row["frame_start"] + row["length"]]
        problems += [f"episode {i}: {p}" for p in _check_label(episode_lit, row, labels)]
    return problems


def _check_events(f: h5py.File, table: dict[str, NDArray[np.int64]]) -> list[str]:
    """Problems of the per-frame contact events against the episode table: none at an episode's
    first frame (no physics step leads to it), ``strike_frame`` at the first bar contact, and
    the first button contact at ``hit_frame`` (none in an episode without a hit)."""
    bar, button = f["bar_contact"][()], f["button_contact"][()]
    problems = []
    if any(f[name][()][table["frame_start"]].any() for name in EVENTS):
        problems.append("a contact event at an episode's first frame, which no physics step leads to")
    for i, (start, length) in enumerate(zip(table["frame_start"], table["length"], strict=True)):
        strike = first_frame(bar[start : start + length])
        if strike != table["strike_frame"][i]:
            problems.append(
                f"episode {i}: strike_frame is {table['strike_frame'][i]}, but bar_contact first "
                f"shows a contact at frame {strike}"
            )
        touched = first_frame(button[start : start + length])
        hit_frame = table["hit_frame"][i] if table["hit_button"][i] >= 0 else -1
        if touched != hit_frame:
            problems.append(
                f"episode {i}: button_contact first shows a contact at frame {touched}, but the "
                f"hit is at frame {hit_frame}"
            )
    return problems


def _check_label(lit: NDArray[np.bool_], row: dict[str, int], labels: str) -> list[str]:
    """Problems of one episode's label, hit button and hit frame against its (T, 5) button states."""
    hit_frame, hit_button = first_lit_frame(lit)
    if (hit_frame, hit_button) != (row["hit_frame"], row["hit_button"]):
        return [
            f"buttons_lit first shows button {hit_button} at frame {hit_frame}, but hit_button is "
            f"{row['hit_button']} and hit_frame {row['hit_frame']}"
        ]
    if hit_frame >= 0 and not (lit[hit_frame:, hit_button].all() and lit.sum(axis=1).max() == 1):
        return ["buttons_lit: the hit button does not stay lit alone"]
    if label_of_button(labels, hit_button) != row["label"]:
        return [
            f"label {row['label']} does not match hit_button {hit_button} "
            f"(classes are buttons {list(LABEL_MODES[labels])})"
        ]
    return []


def describe_dataset(path: str | Path) -> str:
    """A summary table of a dataset: counts, classes, lengths, discards, policy, size on disk."""
    path = Path(path)
    manifest = dataset_manifest(path)
    config, kwargs, policy = manifest["config"], manifest["env_kwargs"], manifest["policy"]
    with open_shards(path) as episodes:
        lengths = episodes.table()["length"] if len(episodes) else np.zeros(1, dtype=np.int64)
    size = sum((path / s["file"]).stat().st_size for s in manifest["shards"])
    classes = ", ".join(
        f"{n} {c}" for n, c in zip(manifest["label_names"], manifest["class_counts"], strict=True)
    )
    discards = ", ".join(f"{k} {v}" for k, v in sorted(manifest["discards"].items()))
    rows = {
        "dataset": f"{path} ({'complete' if manifest['complete'] else 'INCOMPLETE'})",
        "shards": f"{len(manifest['shards'])} of {GenerateConfig(**config).num_shards}",
        "episodes": f"{manifest['episodes']} of {config['episodes']} ({classes})",
        "frames": f"{manifest['frames']} (per episode: mean {lengths.mean():.1f}, "
        f"min {lengths.min()}, max {lengths.max()})",
        "attempts": f"{manifest['attempts']} (discarded {sum(manifest['discards'].values())}: {discards})",
        "frame size": f"{kwargs['width']}x{kwargs['height']}, camera {kwargs['camera_name']!r}",
        "labels": f"{config['labels']} ({', '.join(manifest['label_names'])})",
        "policy": f"{config['policy']}: {policy.get('name')}, sha256 {str(policy.get('sha256'))[:16]}",
        "seed": str(config["seed"]),
        "on disk": f"{size / 1e6:.1f} MB, {size / max(manifest['frames'], 1):.0f} bytes per frame",
        "format": f"{manifest['format']} v{manifest['format_version']}, "
        f"written by airhockey {manifest['package_version']}",
    }
    width = max(map(len, rows))
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows.items())


def preview_episode(path: str | Path, episode: int, out: str | Path) -> Path:
    """Writes one episode as a video (.mp4 or .gif) with its label's name drawn above the frames.

    Args:
        path: a dataset directory or shard file.
        episode: the episode's index in the dataset.
        out: the video file to write.

    Returns:
        The path written.
    """
    out = check_video_path(out)
    with open_shards(path) as episodes:
        if not 0 <= episode < len(episodes):
            raise UserError(f"episode must be in 0-{len(episodes) - 1}, got {episode}")
        record = episodes[episode]
        frames, label = record["frames"], record["label"]
        names, env_kwargs = episodes.label_names, record["env_kwargs"]
    env = make_env(env_kwargs)  # for its frame rate only: it renders nothing
    fps = env.unwrapped.metadata["render_fps"]
    env.close()
    banner = text_banner(frames.shape[2], names[label])
    write_video([np.concatenate([banner, frame]) for frame in frames], out, fps=fps)
    return out
