"""Checks every training loop and run folder of the learning stage shares.

- ``check_finite``: a loss (or validation metric) that is no longer a number ends training at
  once, with the step and the setting to change, instead of training on to a run whose numbers
  mean nothing; every loop (pretext trainer, classifiers, the oracle's head) calls it.
- ``check_out_folder``: a run or report folder never lies inside the data it reads, nor holds it.
- ``training_lock``: one process at a time trains a run folder (a second one, say a worker left
  running by a killed benchmark, is refused instead of writing into the same files).
- ``check_resume`` and ``check_resume_data``: a resumed run continues with its own settings and data.
- ``data_fingerprint`` and ``file_sha256``: what a resumed or reused run is checked against (the
  data it read, the pretext checkpoint it loaded).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airhockey.errors import UserError
from airhockey.generate.shards import EpisodeShards, open_shards
from airhockey.learn.config import RESUMABLE, PretextConfig
from airhockey.learn.methods.base import PretextMethod
from airhockey.writing import open_lock

HASH_CHUNK = 1 << 20
"""Bytes read at a time when hashing a file."""
DATA_CHECKED = ("fingerprint", "split_seed", "train_episodes", "val_episodes", "test_episodes")
"""What a resumed run's data must share with the data it was trained on."""
LOCK_FILE = ".lock"
"""In a pretext run folder: locked while a process trains the run."""


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


@contextlib.contextmanager
def training_lock(out: Path, data: str | Path | None) -> Iterator[None]:
    """Holds an exclusive lock on the run folder ``out`` while a run trains there (released by the
    kernel, even after ``kill -9``). The folder is made if missing, and removed again, with its
    lock file, when the training it was made for fails before writing anything else into it.

    Raises:
        UserError: ``check_out_folder``'s, or when another process holds the lock.
    """
    check_out_folder(out, data)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with open_lock(out / LOCK_FILE) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(
                    f"{str(out)!r}: another process is training this run: wait for it to end, or stop it"
                ) from None
            yield
    except BaseException:
        if created and [p.name for p in out.iterdir()] == [LOCK_FILE]:
            (out / LOCK_FILE).unlink()
            out.rmdir()
        raise


def check_resume(stored: dict[str, Any], config: PretextConfig, method: PretextMethod[Any] | None) -> None:
    if method is not None and (
        method.name != stored["method"] or method.config_dict() != stored["method_config"]
    ):
        raise UserError(
            "--resume continues a run with its own method and settings: leave --method and --set out"
        )
    defaults = dataclasses.asdict(PretextConfig())  # a setting newer than the run had its default
    changed = {
        k for k, v in dataclasses.asdict(config).items() if stored["train_config"].get(k, defaults[k]) != v
    } - RESUMABLE
    if changed:
        raise UserError(f"--resume needs the run's own settings; these differ: {', '.join(sorted(changed))}")


def check_resume_data(checkpoint: dict[str, Any], data_info: dict[str, Any], out: Path) -> None:
    """Refuses to resume a run on other data than it was trained on (another fingerprint or split)."""
    stored = checkpoint.get("data")
    if stored is None:  # a checkpoint from before data was stored in it: config.json's record
        try:
            stored = json.loads((out / "config.json").read_text()).get("data", {})
        except (OSError, ValueError, AttributeError):
            stored = {}
    if not data_info or not isinstance(stored, dict):
        return
    differ = [k for k in DATA_CHECKED if stored.get(k) is not None and stored.get(k) != data_info.get(k)]
    if differ:
        raise UserError(
            f"--resume continues {str(out)!r} on the data it was trained on ({stored.get('path')!r}); "
            f"{data_info['path']!r} differs in {', '.join(differ)}: pass that dataset, or start a new run"
        )
