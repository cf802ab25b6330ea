"""The dataset manifest: ``manifest.json`` in the output directory, rewritten atomically.

It lists the finished shards (file, counts, SHA-256) in index order, the settings that made them,
and whether the dataset is complete. It holds no timestamps or timings, so two runs with the same
settings write the same manifest, whatever the number of workers or interruptions.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import airhockey
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig
from airhockey.generate.hdf5 import atomic_write_text
from airhockey.generate.jobs import ShardEntry
from airhockey.generate.records import FORMAT, FORMAT_VERSION

MANIFEST = "manifest.json"
OPTIONAL_FIELDS = ("package_versions",)
"""Manifest fields that manifests written before they existed lack."""


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
        expected = build_manifest(
            GenerateConfig(**manifest["config"]), manifest["policy"], shard_entries(manifest)
        )
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: a damaged manifest ({type(err).__name__}: {err})") from None
    # Readers index into these fields: each must be there, with the type the writer gives it.
    wrong = sorted(
        k
        for k, v in expected.items()
        if type(manifest.get(k)) is not type(v) and not (k in OPTIONAL_FIELDS and k not in manifest)
    )
    if wrong:
        raise UserError(f"{path}: a damaged manifest (missing or mistyped: {', '.join(wrong)})")
    derived = [k for k in ("env_id", "env_kwargs", "label_names") if manifest[k] != expected[k]]
    if derived:
        raise UserError(f"{path}: a damaged manifest ({', '.join(derived)} do not follow from its config)")
    return manifest


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
