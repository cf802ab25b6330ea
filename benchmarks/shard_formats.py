"""Shard formats compared: frames per chunk and compression of the ``frames`` datasets.

Generates episodes once (scripted policy, 64x64), then writes them as one shard per candidate
layout and prints one table: bytes per frame on disk, write rate, the rate of reading whole
episodes, and the rate of reading random clips (what the pretext DataLoader does). Rates are per
second of this process's CPU time (best of ``--repeats``), which other load on the machine
disturbs far less than wall-clock time; compression is CPU work in the generator's workers.

    python benchmarks/shard_formats.py [--episodes 40] [--clip 10] [--size 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
from common import print_table

from airhockey.generate import EpisodeRecord, GenerateConfig, generate, open_shards
from airhockey.generate.hdf5 import FRAME_LAYOUT, FrameLayout, ShardWriter

LAYOUTS = [
    FrameLayout(None, None, 8),
    FrameLayout("lzf", None, 8),
    FrameLayout("gzip", 1, 8, deflater="hdf5"),
    FrameLayout("gzip", 4, 8, deflater="hdf5"),
    FrameLayout("gzip", 9, 8, deflater="hdf5"),
    FrameLayout("gzip", 0, 8),
    FrameLayout("gzip", 1, 1),
    FrameLayout("gzip", 1, 4),
    FrameLayout("gzip", 1, 8),
    FrameLayout("gzip", 1, 16),
    FrameLayout("gzip", 1, 64),
    FrameLayout("gzip", 3, 8),
]


def per_cpu_second(fn: Callable[[], object], items: int, repeats: int) -> float:
    """Best-of-``repeats`` items per CPU second of one call of ``fn`` that handles ``items`` items."""
    seconds = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        seconds.append(time.process_time() - start)
    return items / max(min(seconds), 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=40, help="episodes to write per layout")
    parser.add_argument("--clip", type=int, default=10, help="frames per random clip read")
    parser.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="timings per measure; the best is kept")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        config = GenerateConfig(args.episodes, width=args.size, height=args.size, policy="scripted")
        generate(config, source, workers=1, progress=False)
        with open_shards(source) as episodes:
            names = [f.name for f in fields(EpisodeRecord)]
            records = [EpisodeRecord(**{k: ep[k] for k in names}) for ep in episodes]
        n_frames = sum(len(r.frames) for r in records)
        rng = np.random.default_rng(0)
        clips = [
            (i, int(rng.integers(len(records[i].frames) - args.clip + 1)))
            for i in rng.integers(len(records), size=500)
        ]

        rows = []
        for layout in LAYOUTS:
            path = Path(tmp) / "shard.h5"

            def write(layout: FrameLayout = layout, path: Path = path) -> None:
                with ShardWriter(path, layout) as writer:
                    for record in records:
                        writer.add(record)
                    writer.finish({})

            write_rate = per_cpu_second(write, n_frames, args.repeats)
            with open_shards(path) as shard:
                read_rate = per_cpu_second(
                    lambda s=shard: [s.frames(i) for i in range(len(s))], n_frames, args.repeats
                )
                clip_rate = per_cpu_second(
                    lambda s=shard: [s.frames(i, t, t + args.clip) for i, t in clips],
                    len(clips),
                    args.repeats,
                )
            name = f"{layout.compression or 'none'}{'' if layout.level is None else f' {layout.level}'}"
            if layout.compression == "gzip":
                name += " (ISA-L, direct chunks)" if layout.direct else " (HDF5's zlib)"
            chosen = " (chosen)" if layout == FRAME_LAYOUT else ""
            rows.append(
                [
                    f"{name}, {layout.frames_per_chunk} frames/chunk{chosen}",
                    path.stat().st_size / n_frames,
                    write_rate,
                    read_rate,
                    clip_rate,
                ]
            )

    print_table(
        f"Shard layouts, {args.episodes} episodes ({n_frames} frames of {args.size}x{args.size}), "
        f"raw {args.size * args.size * 3} bytes/frame, clips of {args.clip} frames",
        [
            "frames: compression, chunk",
            "bytes/frame",
            "write frames/CPU-s",
            "read frames/CPU-s",
            "read clips/CPU-s",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
