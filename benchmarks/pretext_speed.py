"""Speed of pretext training for every registered method: samples/s of its DataLoader and training step.

Prints one table, a row per method (``learn.methods.METHODS``, each at its default config) and
thread count: the method's DataLoader alone (samples/s; the training loop must never wait on it),
training (loading, forward, backward, gradient clipping and the AdamW step, samples/s), the
training samples an epoch of the dataset holds for the method, and the seconds that epoch takes.
With ``--data`` the samples come from a generated dataset's training episodes; without it, from
synthetic 64x64 episodes in memory (a dark square crossing a light frame, 300 episodes of 32
frames, 240 of them training).

    python benchmarks/pretext_speed.py [--data DATA] [--methods a,b] [--threads 1,2] [--batches 8]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from common import print_table
from numpy.typing import NDArray

from airhockey.learn.config import PretextConfig
from airhockey.learn.methods import get_method, method_names
from airhockey.learn.pretext.trainer import sample_loader


class SyntheticEpisodes:
    """Episodes in memory with the reading interface methods use (``frames``, ``table``, ``close``):
    a dark 5-px square crossing a light frame, for timing only."""

    def __init__(self, n: int, length: int, size: int) -> None:
        rng = np.random.default_rng(0)
        self._frames = np.full((n, length, size, size, 3), 230, np.uint8)
        for i in range(n):
            y, x = rng.integers(0, size - 5 - length, 2)
            for t in range(length):
                self._frames[i, t, y + t // 2 : y + t // 2 + 5, x + t : x + t + 5] = 25

    def frames(self, index: int, start: int = 0, stop: int | None = None) -> NDArray[np.uint8]:
        return self._frames[index, start:stop]

    def table(self) -> dict[str, NDArray[np.int64]]:
        n, length = self._frames.shape[:2]
        return {"label": np.arange(n) % 2, "length": np.full(n, length)}

    def close(self) -> None:
        pass


def endless(loader: Any) -> Iterator[Any]:
    """The loader's batches, pass after pass (each pass loads them again)."""
    while True:
        yield from loader


def batch_size(batch: Any) -> int:
    """Samples in a batch: a tensor's first dimension, or that of a dict's or tuple's first tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return batch_size(first)


def samples_per_second(batches: Iterator[Any], step: Callable[[Any], object]) -> float:
    """Samples/s of ``step(batch)`` over the batches, after one warm-up batch."""
    step(next(batches))
    start, n = time.perf_counter(), 0
    for batch in batches:
        step(batch)
        n += batch_size(batch)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="a dataset directory from 'airhockey generate' (default: synthetic)")
    parser.add_argument("--methods", help="comma-separated method names (default: every registered one)")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument(
        "--batches", type=int, default=8, help="timed training batches per method and thread count"
    )
    args = parser.parse_args()

    config = PretextConfig()
    if args.data:
        from airhockey.generate import open_shards
        from airhockey.learn.data import split_episodes

        episodes: Any = open_shards(args.data)
        train = split_episodes(episodes.table()["label"], seed=config.split_seed).train
        size = tuple(int(n) for n in episodes.frames(0, 0, 1).shape[1:3])
        source = f"{args.data} ({len(train)} training episodes)"
    else:
        episodes, train, size = SyntheticEpisodes(300, 32, 64), np.arange(240), (64, 64)
        source = "synthetic episodes in memory (240 training episodes of 32 frames)"

    device = torch.device("cpu")
    rows = []
    for name in args.methods.split(",") if args.methods else method_names():
        method = get_method(name)().with_image_size(size)  # type: ignore[arg-type]
        dataset = method.samples(episodes, train, config.seed, training=True)
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            need = args.batches + 1
            loader_rate = samples_per_second(
                itertools.islice(endless(sample_loader(dataset, config, device, epoch=0)), need * 4),
                lambda batch: None,
            )
            torch.manual_seed(0)
            model = method.build_model().train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

            def step(batch: Any, model: torch.nn.Module = model, optimizer: Any = optimizer) -> None:
                loss = method.loss(model, batch)  # noqa: B023  (each method is timed before the next)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()

            train_rate = samples_per_second(
                itertools.islice(endless(sample_loader(dataset, config, device, epoch=0)), need), step
            )
            rows.append((name, threads, loader_rate, train_rate, len(dataset), len(dataset) / train_rate))

    print_table(
        f"Pretext training speed per method: default configs, batch {config.batch_size}, "
        f"{size[0]}x{size[1]} frames; data: {source}",
        [
            "method",
            "torch threads",
            "DataLoader alone (samples/s)",
            "training (samples/s)",
            "samples/epoch",
            "s/epoch",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
