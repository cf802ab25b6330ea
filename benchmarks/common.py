"""Timing and table printing shared by the benchmark scripts."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence

import airhockey  # noqa: F401  (chooses the headless GL backend before MuJoCo loads)


def rate(fn: Callable[[], None], n: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` calls per second of ``fn``, called ``n`` times per repeat."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def interleaved_rates(fns: dict[str, Callable[[], None]], n: int, repeats: int = 5) -> dict[str, float]:
    """Best-of-``repeats`` calls per second of each function, timed in turn within each repeat.

    Timing the functions alternately, rather than one after the other, exposes them to the same
    background load, so their ratios are steadier than their absolute rates.
    """
    best = dict.fromkeys(fns, 0.0)
    for _ in range(repeats):
        for name, fn in fns.items():
            best[name] = max(best[name], rate(fn, n, repeats=1))
    return best


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Prints a Markdown table with a title line naming the machine."""
    print(f"\n{title}  ({platform.processor() or platform.machine()}, Python {platform.python_version()})\n")
    cells = [[str(h) for h in headers]] + [
        [f"{c:,.1f}" if isinstance(c, float) else str(c) for c in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    print(fmt.format(*cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print(fmt.format(*row))
