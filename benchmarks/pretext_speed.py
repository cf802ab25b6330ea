"""Speed of pretext training: clips/s of the training step and of the clip DataLoader alone.

Prints one table for the default model and training settings: the DataLoader's clips/s on its
own (the training loop must never wait on it), the training clips/s (loading, forward, backward
and the AdamW step), and the seconds an epoch of the given dataset's training clips takes, for
each thread count. With ``--data`` the clips come from a generated dataset (``learn.data``);
without it, from synthetic 64x64 clips in memory, and the epoch is that of a 300-episode dataset
of 60-frame episodes, split 80/10/10.

    python benchmarks/pretext_speed.py [--data DATA] [--threads 1,2] [--batches 8]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
from common import print_table
from torch.utils.data import DataLoader

from airhockey.learn.autoencoder import AutoencoderConfig, ConvLSTMAutoencoder
from airhockey.learn.pretext import PretextConfig, clip_loader, train_step


def synthetic_clips(n: int, length: int, size: int) -> torch.Tensor:
    """(n, length, 3, size, size): a dark 5-px square crossing a light frame, for timing only."""
    clips = torch.full((n, length, 3, size, size), 0.9)
    rng = np.random.default_rng(0)
    for i in range(n):
        y, x = rng.integers(0, size - 5 - 2 * length, 2)
        for t in range(length):
            clips[i, t, :, y + t : y + t + 5, x + 2 * t : x + 2 * t + 5] = 0.1
    return clips


def endless(loader: DataLoader) -> Iterator[torch.Tensor]:
    """The loader's batches, pass after pass (each pass loads them again)."""
    while True:
        yield from loader


def clips_per_second(batches: Iterator[torch.Tensor], step: Callable[[torch.Tensor], object]) -> float:
    """Clips/s of ``step(batch)`` over the batches, after one warm-up batch."""
    step(next(batches))
    start, n = time.perf_counter(), 0
    for batch in batches:
        step(batch)
        n += batch.shape[0]
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="a dataset directory from 'airhockey generate' (default: synthetic)")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--batches", type=int, default=8, help="timed training batches per thread count")
    args = parser.parse_args()

    model_config, config = AutoencoderConfig(), PretextConfig()
    length = model_config.clip_length
    if args.data:
        from airhockey.generate import open_shards
        from airhockey.learn.data import ClipDataset, split_episodes

        episodes = open_shards(args.data)
        split = split_episodes(episodes.table()["label"], seed=config.split_seed)
        dataset = ClipDataset(episodes, length, split.train, config.clip_stride)
        source, epoch_clips = f"{args.data} ({len(split.train)} training episodes)", len(dataset)
    else:
        dataset = synthetic_clips(64, length, model_config.image_size[0])
        source = "synthetic clips in memory"
        epoch_clips = 240 * len(range(0, 60 - length + 1, config.clip_stride))

    device = torch.device("cpu")
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        need = args.batches + 1
        loader_rate = clips_per_second(
            itertools.islice(endless(clip_loader(dataset, config, device, epoch=0)), need * 4),
            lambda batch: None,
        )
        torch.manual_seed(0)
        model = ConvLSTMAutoencoder(model_config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        train_rate = clips_per_second(
            itertools.islice(endless(clip_loader(dataset, config, device, epoch=0)), need),
            functools.partial(train_step, model, optimizer, config=config),
        )
        rows.append((threads, loader_rate, train_rate, epoch_clips / train_rate))

    print_table(
        f"Pretext training speed: default config, batch {config.batch_size}, clips of {length} frames "
        f"{model_config.image_size[0]}x{model_config.image_size[1]}, {epoch_clips} clips per epoch; "
        f"data: {source}",
        ["torch threads", "DataLoader alone (clips/s)", "training (clips/s)", "s/epoch"],
        rows,
    )


if __name__ == "__main__":
    main()
