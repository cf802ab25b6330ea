"""A training run's state files: the evaluation log (one CSV row per evaluation), the states of its
checkpoint and best model, its resolved config, and the training-curve plot.

Each state file is read through one checked reader that names the file and the field in one line."""

from __future__ import annotations

import csv
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airhockey.errors import UserError
from airhockey.records import OMIT, read_record
from airhockey.writing import atomic_file, open_append


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


@dataclass(frozen=True)
class CheckpointState:
    """``checkpoint/state.json`` and ``best/state.json``: where a saved model stands."""

    timesteps: int
    """Environment steps trained on when it was saved."""
    wall_seconds: float
    """Wall-clock seconds of training by then."""
    success_rate: float | None = field(default=None, metadata=OMIT)
    """The success rate of its evaluation (the best model's state only)."""
    sha256: str | None = field(default=None, metadata=OMIT)
    """The saved model's identity (``PolicyFiles.sha256``: its zip, then its statistics), written
    after them: a state whose model files do not match was cut off between the two."""


@dataclass(frozen=True)
class RunConfigRecord:
    """A run's ``config.json``: the environment, the versions that trained it, the resolved config."""

    env_id: str
    """The environment's id."""
    versions: dict[str, str]
    """Package versions by name."""
    config: dict[str, Any]
    """``TrainConfig.to_dict()``."""


def read_state(path: Path) -> CheckpointState:
    """The checkpoint state in ``path``.

    Raises:
        UserError: one line naming the file and the field, for a missing or damaged file.
    """
    state = read_record(CheckpointState, path, "checkpoint state")
    if state.timesteps < 0 or not math.isfinite(state.wall_seconds):
        raise UserError(f"{path}: field 'timesteps' or 'wall_seconds' is out of range: restore it")
    return state


def read_run_config(path: Path) -> RunConfigRecord:
    """The run config in ``path``.

    Raises:
        UserError: one line naming the file and the field, for a missing or damaged file.
    """
    return read_record(RunConfigRecord, path, "training run's config")


COLUMNS = tuple(f.name for f in dataclasses.fields(EvalRow))
_FORMATS = {"timesteps": "{:d}", "wall_seconds": "{:.2f}", "mean_length": "{:.2f}"}


def _format(row: EvalRow) -> list[str]:
    return [_FORMATS.get(name, "{:.6g}").format(getattr(row, name)) for name in COLUMNS]


def append_row(path: Path, row: EvalRow) -> None:
    """Appends ``row`` to the CSV at ``path``, writing the header first if the file is new.

    Raises:
        UserError: when ``path`` is a symbolic link, or the disk is full.
    """
    with open_append(path, "evaluation log") as f:
        writer = csv.writer(f)
        if f.tell() == 0:
            writer.writerow(COLUMNS)
        writer.writerow(_format(row))


def read_rows(path: Path) -> list[EvalRow]:
    """The rows of a run's CSV, oldest first; none if the file does not exist.

    Raises:
        UserError: for a file without the columns, or a value that is not a finite number, naming
            the file, the line and the column.
    """
    if not path.exists():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise UserError(f"{path}: the header is not {','.join(COLUMNS)}: a damaged evaluation log")
        return [_read_row(path, reader.line_num, r) for r in reader]


def _read_row(path: Path, line: int, raw: dict[str, str | None]) -> EvalRow:
    values: list[float] = []
    for name in COLUMNS:
        try:
            value = float(raw[name] or "")
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (name == "timesteps" and value != int(value)):
            raise UserError(f"{path}, line {line}: column {name!r} holds {raw[name]!r}, not a number")
        values.append(value)
    return EvalRow(int(values[0]), *values[1:])


def keep_rows_until(path: Path, timesteps: int) -> list[EvalRow]:
    """Drops the rows logged after ``timesteps`` (a resumed run redoes them); returns the rest.

    Raises:
        UserError: for a damaged log (see ``read_rows``), or a full disk.
    """
    rows = [row for row in read_rows(path) if row.timesteps <= timesteps]
    with atomic_file(path, "w") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(_format(row) for row in rows)
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
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=120)
    return path
