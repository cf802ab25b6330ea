"""The dataset manifest: ``manifest.json`` in the output directory, rewritten atomically.

It lists the finished shards (file, counts, SHA-256) in index order, the settings that made them,
and whether the dataset is complete. It holds no timestamps or timings, so two runs with the same
settings write the same manifest, whatever the number of workers or interruptions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import airhockey
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig
from airhockey.generate.hdf5 import atomic_write_text
from airhockey.generate.jobs import ShardEntry
from airhockey.generate.records import FORMAT, FORMAT_VERSION

MANIFEST = "manifest.json"


def build_manifest(
    config: GenerateConfig, policy: dict[str, str], shards: Iterable[ShardEntry]
) -> dict[str, Any]:
    """The manifest of a dataset holding ``shards``; ``complete`` once all planned shards are there."""
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


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of ``out_dir``, or None where there is none.

    Raises:
        UserError: when the manifest is not a valid airhockey manifest.
    """
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path}: not an airhockey dataset manifest (no format={FORMAT!r})")
    if int(manifest.get("format_version", -1)) > FORMAT_VERSION:
        raise UserError(
            f"{path}: format version {manifest['format_version']} is newer than this package reads"
        )
    try:
        GenerateConfig(**manifest["config"])
        shard_entries(manifest)
    except (KeyError, TypeError) as err:
        raise UserError(f"{path}: a damaged manifest ({type(err).__name__}: {err})") from None
    return manifest


def shard_entries(manifest: dict[str, Any]) -> list[ShardEntry]:
    """The manifest's shard entries."""
    return [ShardEntry(**entry) for entry in manifest["shards"]]
