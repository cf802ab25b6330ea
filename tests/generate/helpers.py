"""Settings and helpers shared by the generate tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from airhockey.generate import GenerateConfig

SMALL = GenerateConfig(episodes=8, width=32, height=32, policy="scripted", shard_size=3, lockstep_envs=4)
"""8 episodes in shards of 3, 3 and 2: the last shard is short and each shard has both classes."""


def file_digests(path: Path) -> dict[str, str]:
    """SHA-256 of every visible file in a dataset directory."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.name[0] != "."
    }
