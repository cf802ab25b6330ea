"""Settings and helpers shared by the generate tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import h5py

from airhockey.generate import GenerateConfig

SMALL = GenerateConfig(episodes=8, width=32, height=32, policy="scripted", shard_size=3, lockstep_envs=4)
"""8 episodes in shards of 3, 3 and 2: the last shard is short and each shard has both classes."""


def drop_episode_factors(f: h5py.File) -> None:
    """Removes what format 3 added to a shard (each episode's policy, layout and factors), as a
    shard of an older format lacks it."""
    for name in ("episodes/policy", "episodes/layout", "episodes/factors"):
        if name in f:
            del f[name]
    del f.attrs["factor_names"]


def file_digests(path: Path) -> dict[str, str]:
    """SHA-256 of every visible file in a dataset directory."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.name[0] != "."
    }


def running_ray_tasks(function_name: str) -> dict[int, int]:
    """Process id -> parent process id (its node's raylet) of every Ray worker on this machine that
    is running a task of ``function_name`` now (Ray titles such a process ``ray::<name>``)."""
    running = {}
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0]
            if title == f"ray::{function_name}".encode():
                running[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # not a process, or one that ended while being read
    return running


def rewrite_shard(data: Path, index: int, edit: Callable[[h5py.File], None]) -> None:
    """Applies ``edit`` to shard ``index`` of the dataset ``data`` opened read-write, and records the
    shard's new SHA-256 in the manifest, so that only the checks of the contents can notice."""
    name = f"shard-{index:05d}.h5"
    old = file_digests(data)[name]
    with h5py.File(data / name, "r+") as f:
        edit(f)
    manifest = (data / "manifest.json").read_text()
    (data / "manifest.json").write_text(manifest.replace(old, file_digests(data)[name]))
