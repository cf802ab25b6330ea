"""Torch CPU threads under load: the time of one training step with 1, 2, ... threads while 0, 1, ...
other processes keep cores busy, to choose the default of ``--threads`` (``cli._set_threads``).

The step is a small ConvLSTM-style recurrent autoencoder step on 64x64 frames (the learn stage's
shape of work: many small convolutions, each a parallel region whose threads must all arrive
before the next starts). Each busy process is a Python loop that never sleeps, standing in for
another job (a data loader, another user's run, a generate worker) on the same cores. Each setting
is timed in turn within every round, so all see the same background; the table gives medians.

    python benchmarks/torch_threads.py [--rounds 3] [--steps 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time

import torch
from common import print_table
from torch import nn


def _burn(stop: multiprocessing.Event) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


class _Cell(nn.Module):
    """One ConvLSTM cell: all four gates from one 3x3 convolution over input and hidden state."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(channels + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class _Model(nn.Module):
    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 16, 4, stride=2, padding=1)  # 64 -> 32
        self.cell = _Cell(16, hidden)
        self.up = nn.ConvTranspose2d(hidden, 3, 4, stride=2, padding=1)  # 32 -> 64

    def forward(self, clip: torch.Tensor) -> torch.Tensor:  # (B, T, 3, 64, 64) -> (B, 3, 64, 64)
        b, t = clip.shape[:2]
        h = c = clip.new_zeros(b, self.cell.hidden, 32, 32)
        for k in range(t):
            h, c = self.cell(torch.relu(self.down(clip[:, k])), h, c)
        return torch.sigmoid(self.up(h))


def _step_seconds(threads: int, steps: int) -> float:
    """Median seconds of one forward, backward and optimiser step with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = _Model()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    clip = torch.rand(8, 8, 3, 64, 64)  # (B, T, C, H, W)
    target = torch.rand(8, 3, 64, 64)
    times = []
    for _ in range(steps + 1):  # the first step allocates: not timed
        start = time.perf_counter()
        loss = nn.functional.mse_loss(model(clip), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="Rounds; each times every setting once.")
    parser.add_argument("--steps", type=int, default=5, help="Timed training steps per setting and round.")
    args = parser.parse_args()
    loadavg = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    cores = len(os.sched_getaffinity(0))
    thread_counts = sorted({1, 2, cores})
    rows = []
    for busy in range(cores + 1):
        stop = multiprocessing.Event()
        burners = [multiprocessing.Process(target=_burn, args=(stop,), daemon=True) for _ in range(busy)]
        for p in burners:
            p.start()
        try:
            times: dict[int, list[float]] = {n: [] for n in thread_counts}
            for _ in range(args.rounds):
                for n in thread_counts:
                    times[n].append(_step_seconds(n, args.steps))
        finally:
            stop.set()
            for p in burners:
                p.join()
        medians = {n: statistics.median(t) * 1e3 for n, t in times.items()}
        rows.append(
            [
                busy,
                *(medians[n] for n in thread_counts),
                *(f"{medians[n] / medians[1]:.2f}x" for n in thread_counts if n != 1),
            ]
        )
    headers = [
        "busy processes",
        *(f"{n} thread{'s' * (n > 1)} (ms/step)" for n in thread_counts),
        *(f"{n} vs 1" for n in thread_counts if n != 1),
    ]
    print_table(
        f"Torch training step, median of {args.rounds} rounds x {args.steps} steps, {cores} cores, "
        f"torch {torch.__version__}, load average before {loadavg}",
        headers,
        rows,
    )


if __name__ == "__main__":
    main()
