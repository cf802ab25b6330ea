"""Checks every training loop and run folder of the learning stage shares.

- ``check_finite``: a loss (or validation metric) that is no longer a number ends training at
  once, with the step and the setting to change, instead of training on to a run whose numbers
  mean nothing; every loop (pretext trainer, classifiers, the oracle's head) calls it.
- ``check_out_folder``: a run or report folder never lies inside the data it reads, nor holds it.
- ``data_fingerprint`` and ``file_sha256``: what a resumed or reused run is checked against (the
  data it read, the pretext checkpoint it loaded).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from airhockey.errors import UserError
from airhockey.generate.shards import EpisodeShards, open_shards

HASH_CHUNK = 1 << 20
"""Bytes read at a time when hashing a file."""


def check_finite(value: float, what: str, where: str, setting: str) -> None:
    """Stops a diverged training.

    Args:
        value: the loss or metric just computed.
        what: what it is, e.g. ``"training loss"``.
        where: when, e.g. ``"step 12 (epoch 2)"``.
        setting: what to change, e.g. ``"lower --lr (now 1e+06)"``.

    Raises:
        UserError: when ``value`` is NaN or infinite, in one line naming all three.
    """
    if not math.isfinite(value):
        raise UserError(f"training diverged: the {what} is {value} at {where}; {setting} and start again")


def check_out_folder(out: str | Path, *data: str | Path | None) -> None:
    """Refuses an output folder that is, contains or lies inside a dataset folder (or is, or
    contains, a lone shard file).

    Raises:
        UserError: naming both.
    """
    target = Path(out).resolve()
    for source in data:
        if source is None:
            continue
        folder = Path(source).resolve()
        inside = folder in target.parents and not folder.is_file()
        if target == folder or inside or target in folder.parents:
            raise UserError(
                f"--out {str(out)!r} is, holds or lies inside the dataset {str(source)!r}: "
                "choose an output folder outside the data"
            )


def file_sha256(path: str | Path) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def episodes_fingerprint(episodes: EpisodeShards) -> str:
    """What identifies a generated dataset's bytes: the manifest's fingerprint
    (``EpisodeShards.fingerprint``), or for shards without a manifest the SHA-256 of their files'."""
    if episodes.fingerprint is not None:
        return episodes.fingerprint
    return hashlib.sha256("".join(file_sha256(p) for p in episodes.paths).encode()).hexdigest()


def data_fingerprint(path: str | Path) -> str:
    """``episodes_fingerprint`` of the dataset at ``path``.

    Raises:
        UserError: a missing or unreadable dataset (``open_shards``).
    """
    episodes = open_shards(path)
    try:
        return episodes_fingerprint(episodes)
    finally:
        episodes.close()
