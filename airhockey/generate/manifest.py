"""The dataset manifest: ``manifest.json`` in the output directory, rewritten atomically.

It lists the finished shards (file, counts, SHA-256) in index order, the settings that made them,
and whether the dataset is complete. It holds no timestamps or timings, so two runs with the same
settings write the same manifest, whatever the number of workers or interruptions.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import airhockey
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig
from airhockey.generate.hdf5 import atomic_write_text
from airhockey.generate.jobs import ShardEntry, shard_filename
from airhockey.generate.records import FORMAT, FORMAT_VERSION
from airhockey.records import OMIT, read_json_file, record_of

MANIFEST = "manifest.json"


class MixedVersionsWarning(UserWarning):
    """A dataset is completed by another package version than the one that began it."""


def build_manifest(
    config: GenerateConfig,
    policy: dict[str, str],
    shards: Iterable[ShardEntry],
    versions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The manifest of a dataset holding ``shards``; ``complete`` once all planned shards are there.

    Args:
        config: the run's settings.
        policy: the policy's identity.
        shards: the finished shards' entries, in any order.
        versions: the package versions that wrote the shards, in the order they ran (see
            ``package_versions``); default: this one.
    """
    entries = sorted(shards, key=lambda s: s.index)
    n_classes = len(config.label_names)
    discards: dict[str, int] = {}
    for entry in entries:
        for reason, count in entry.discards.items():
            discards[reason] = discards.get(reason, 0) + count
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": airhockey.__version__,
        "package_versions": list(versions or [airhockey.__version__]),
        "env_id": airhockey.ENV_ID,
        "env_kwargs": config.env_kwargs(),
        "policy": policy,
        "config": config.to_dict(),
        "label_names": list(config.label_names),
        "complete": len(entries) == config.num_shards,
        "episodes": sum(e.episodes for e in entries),
        "frames": sum(e.frames for e in entries),
        "class_counts": [sum(e.class_counts[c] for e in entries) for c in range(n_classes)],
        "attempts": sum(e.attempts for e in entries),
        "discards": discards,
        "shards": [e.to_dict() for e in entries],
    }


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Writes the manifest atomically (temporary file, fsync, rename)."""
    atomic_write_text(Path(out_dir) / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class ManifestRecord:
    """The fields of ``manifest.json`` and their types, as ``build_manifest`` writes them."""

    format: str
    format_version: int
    package_version: str
    env_id: str
    env_kwargs: dict[str, Any]
    policy: dict[str, str]
    config: dict[str, Any]
    label_names: tuple[str, ...]
    complete: bool
    episodes: int
    frames: int
    class_counts: tuple[int, ...]
    attempts: int
    discards: dict[str, int]
    shards: tuple[ShardEntry, ...]
    package_versions: tuple[str, ...] | None = field(default=None, metadata=OMIT)
    """Absent in manifests written before it existed."""


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of ``out_dir``, or None where there is none.

    Raises:
        UserError: one line naming the file (and the field), when the manifest is not JSON, not an
            airhockey manifest, of a newer format, or damaged: a field missing, unknown or of the
            wrong type, a shard entry outside the directory or with a negative count, or totals
            that do not follow from its config and shards.
    """
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    manifest = read_json_file(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path}: not an airhockey dataset manifest (no format={FORMAT!r})")
    version = manifest.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise UserError(f"{path}: format version {version} is newer than this package reads")
    record = record_of(ManifestRecord, manifest, path, "dataset manifest")
    try:
        shard_entries(manifest)
    except TypeError as err:
        raise UserError(f"{path}: field 'shards': {err}: a damaged manifest") from None
    try:
        config = GenerateConfig(**record.config)
    except (TypeError, ValueError) as err:
        raise UserError(f"{path}: field 'config': {err}: a damaged manifest") from None
    expected = build_manifest(config, record.policy, record.shards)
    derived = [k for k in ("env_id", "env_kwargs", "label_names") if manifest[k] != expected[k]]
    if derived:
        raise UserError(f"{path}: a damaged manifest (field {derived[0]!r} does not follow from its config)")
    disorder = shard_order_problem(config, shard_entries(manifest))
    if disorder:
        raise UserError(f"{path}: field 'shards': {disorder}: a damaged manifest")
    return manifest


def shard_order_problem(config: GenerateConfig, entries: Sequence[ShardEntry]) -> str | None:
    """Why shard entries are not in the order and episode ranges of the run's plan, or None.

    Each entry's index must exceed the one before it and be one of the ``config.num_shards``
    planned, its file the one named for that index, and its episodes the planned ones (episodes
    ``index * shard_size`` on), so that reading the shards in the manifest's order numbers the
    episodes as the shards themselves do.
    """
    previous = -1
    for e in entries:
        if not previous < e.index < config.num_shards:
            return f"shard index {e.index} listed after {previous} (increasing, below {config.num_shards})"
        if e.file != shard_filename(e.index):
            return f"shard {e.index} is listed as {e.file!r}, not {shard_filename(e.index)!r}"
        planned = min(config.shard_size, config.episodes - e.index * config.shard_size)
        if e.episodes != planned:
            return f"shard {e.index} lists {e.episodes} episodes, its plan {planned}"
        previous = e.index
    return None


def shard_entries(manifest: dict[str, Any]) -> list[ShardEntry]:
    """The manifest's shard entries.

    Raises:
        TypeError: when an entry lacks a field, or a field has the wrong type or a negative count.
        KeyError: when the manifest has no ``shards``.
    """
    entries = [ShardEntry(**entry) for entry in manifest["shards"]]
    for e in entries:
        counts = (e.index, e.episodes, e.frames, e.attempts, e.bytes, *e.class_counts, *e.discards.values())
        if not (
            isinstance(e.file, str)
            and e.file == Path(e.file).name  # a file of the dataset directory, never elsewhere
            and isinstance(e.sha256, str)
            and all(type(n) is int and n >= 0 for n in counts)
        ):
            raise TypeError(f"shard entry {e.file!r} has a field of the wrong type or value")
    return entries


def package_versions(previous: dict[str, Any] | None, out_dir: Path) -> list[str]:
    """The package versions that wrote a dataset's shards once this run adds its own, in order.

    Args:
        previous: the manifest found when resuming, or None.
        out_dir: the dataset directory, for the warning.

    Warns:
        MixedVersionsWarning: when finished shards were written by another version than this
            one, naming both; the manifest records every version in ``package_versions``.
    """
    here = airhockey.__version__
    if previous is None or not previous["shards"]:
        return [here]
    before = list(previous.get("package_versions") or [previous["package_version"]])
    if before[-1] != here:
        warnings.warn(
            f"{out_dir}: resuming a dataset begun by airhockey {', '.join(before)} with airhockey "
            f"{here}: its shards will mix package versions (manifest.json lists them in package_versions)",
            MixedVersionsWarning,
            stacklevel=3,
        )
    return before if before[-1] == here else [*before, here]
