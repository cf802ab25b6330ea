"""A training run's evaluation log: one CSV row per evaluation, and the training-curve plot."""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EvalRow:
    """One evaluation made during training, on the run's fixed validation seeds."""

    timesteps: int
    """Environment steps trained on so far (all environments together)."""
    wall_seconds: float
    """Wall-clock seconds since the run started, evaluations and resumed sessions included."""
    success_rate: float
    """Fraction of episodes that hit the target button."""
    success_low: float
    """Lower end of the 95% Wilson interval of the success rate."""
    success_high: float
    """Upper end of the 95% Wilson interval of the success rate."""
    mean_return: float
    """Mean undiscounted episode return, in the env's own (unnormalised) reward."""
    mean_length: float
    """Mean episode length in steps."""


COLUMNS = tuple(f.name for f in dataclasses.fields(EvalRow))
_FORMATS = {"timesteps": "{:d}", "wall_seconds": "{:.2f}", "mean_length": "{:.2f}"}


def append_row(path: Path, row: EvalRow) -> None:
    """Appends ``row`` to the CSV at ``path``, writing the header first if the file is new."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(COLUMNS)
        writer.writerow([_FORMATS.get(name, "{:.6g}").format(getattr(row, name)) for name in COLUMNS])


def read_rows(path: Path) -> list[EvalRow]:
    """The rows of a run's CSV, oldest first; none if the file does not exist."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [
            EvalRow(int(r["timesteps"]), *(float(r[name]) for name in COLUMNS[1:])) for r in csv.DictReader(f)
        ]


def keep_rows_until(path: Path, timesteps: int) -> list[EvalRow]:
    """Drops the rows logged after ``timesteps`` (a resumed run redoes them); returns the rest."""
    rows = [row for row in read_rows(path) if row.timesteps <= timesteps]
    path.unlink(missing_ok=True)
    for row in rows:
        append_row(path, row)
    return rows


def plot_curve(rows: list[EvalRow], path: Path, title: str) -> Path:
    """Plots success rate (with its 95% interval) against env steps and against wall-clock minutes.

    Returns:
        The PNG written.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    steps = [r.timesteps for r in rows]
    minutes = [r.wall_seconds / 60 for r in rows]
    for ax, x, label in ((axes[0], steps, "environment steps"), (axes[1], minutes, "wall-clock minutes")):
        ax.fill_between(x, [r.success_low for r in rows], [r.success_high for r in rows], alpha=0.25)
        ax.plot(x, [r.success_rate for r in rows], marker=".")
        ax.set_xlabel(label)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("success rate (95% interval)")
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    return path
