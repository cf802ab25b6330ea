"""What the commands share: the error boundary, the options several stages take, torch threads.

Heavy imports (torch, stable-baselines3, h5py, matplotlib, Ray) stay inside the functions that need
them, so that ``airhockey --help`` is instant.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from airhockey.backends import Backend
from airhockey.errors import UserError
from airhockey.extras import missing_extra_error
from airhockey.learn.protocol.results import Results

F = TypeVar("F", bound=Callable[..., Any])

STAGE_EXTRAS = {"generate": "data", "pipeline": "all"}
"""The extra of each top-level command not named after its extra (``agent``, ``data``, ``learn`` are):
named when a module it needs is missing and several extras install it."""


def user_errors(fn: F) -> F:
    """The CLI's error boundary: a user's mistake ends in one line ``error: <what>: <why>`` on stderr, exit 2.

    Mistakes are UserError and ValueError (bad options, damaged files: the library names the file
    or option) and OSError (a path the user gave that is missing, a directory, under a file, on a
    full disk or not writable: named by the error's own file name).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UserError, ValueError, OSError) as err:
            typer.echo(f"error: {_one_line(err)}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


class OneLineErrors(TyperGroup):
    """The root command group: a mistake in the options themselves (click's usage errors: a missing,
    unknown or malformed option) ends, as the commands' own errors do, in one line on stderr, exit 2.

    So does a command whose stage needs an extra that is not installed: ``error: <command> needs the
    '<extra>' extra: pip install "airhockey[<extra>]"`` (``airhockey.extras``), exit 2.
    """

    def main(
        self, args: Sequence[str] | None = None, *rest: Any, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        if not standalone_mode:
            return super().main(args, *rest, standalone_mode=False, **kwargs)
        try:
            code = super().main(args, *rest, standalone_mode=False, **kwargs)
        except ModuleNotFoundError as err:
            command = self.subcommand_names(sys.argv[1:] if args is None else list(args))
            stage = STAGE_EXTRAS.get(command[0], command[0]) if command else None
            missing = missing_extra_error(err, " ".join(command) or "this command", prefer=stage)
            if missing is None:
                raise
            typer.echo(f"error: {missing}", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except Exception as err:
            # click's ClickException (typer may vendor click, so it is recognised by its interface)
            if not (hasattr(err, "format_message") and hasattr(err, "exit_code")):
                raise
            if type(err).__name__ == "NoArgsIsHelpError":
                err.show()  # a group called bare: its help, as usual
                sys.exit(err.exit_code)
            ctx = getattr(err, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            typer.echo(f"error: {' '.join(err.format_message().split())}{where}", err=True)
            sys.exit(err.exit_code)
        sys.exit(code if isinstance(code, int) else 0)

    def subcommand_names(self, args: Sequence[str]) -> list[str]:
        """The names of the (sub-)commands that ``args`` start with: ``["learn", "pretext"]``."""
        names: list[str] = []
        group: Any = self
        for word in args:
            group = getattr(group, "commands", {}).get(word)
            if group is None:
                break
            names.append(word)
        return names


def _one_line(err: BaseException) -> str:
    """An error's message on one line; an OSError's as ``<file>: <reason>``."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        target = f" -> {err.filename2}" if err.filename2 is not None else ""
        return f"{err.filename}{target}: {err.strerror}"
    return " ".join(str(err).split()) or type(err).__name__


def command_line() -> str:
    """The command as the user typed it, recorded in every run folder."""
    return " ".join(["airhockey", *sys.argv[1:]])


def set_threads(threads: int | None) -> None:
    """Sets torch's CPU threads: ``threads``, or by default 1, the one count that cannot collapse.

    Each torch operation waits for all its threads; when another process holds a core, the
    waits dominate (``benchmarks/torch_threads.py`` measures it).
    """
    import torch

    torch.set_num_threads(threads or 1)


def backend_for(kind: str, address: str | None, cpus_per_task: float, device: str) -> Backend:
    """Where jobs run; a Ray task of a run on a CUDA ``device`` reserves one GPU."""
    gpus = 1.0 if kind == "ray" and device.startswith("cuda") else 0.0
    return Backend(kind, address, cpus_per_task=cpus_per_task, gpus_per_task=gpus)


def echo_comparison(results: Results) -> None:
    """Prints a comparison's conclusions, one line each."""
    from airhockey.learn.protocol.report import conclusions

    typer.echo("\n".join(conclusions(results)))


EpisodeIndex = Annotated[int, typer.Option(min=0, help="Index of the episode in the dataset.")]
VideoHelp = "Video file to write: .mp4 or .gif."
ProgressOption = Annotated[bool, typer.Option(help="Show progress bars.")]
TargetsOption = Annotated[str, typer.Option(help="Target buttons: 'leftright' or 'all'.")]
BackendOption = Annotated[
    str,
    typer.Option(
        help="Where the jobs run: 'local' (processes on this machine) or 'ray' (Ray tasks on this machine "
        "or a cluster; needs the package's 'ray' extra, see docs/scale.md)."
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="With --backend ray: the cluster to join, 'auto' (the one 'ray start' began here) or "
        "HOST:PORT of its head; default: start a Ray instance on this machine.",
        show_default=False,
    ),
]
RayCpusOption = Annotated[float, typer.Option(help="With --backend ray: CPUs each task reserves.")]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Torch CPU threads. Default: 1; more help only on cores nothing else uses "
        "(benchmarks/torch_threads.py measures it).",
    ),
]
DeviceOption = Annotated[str, typer.Option(help="Torch device: 'cpu' (reproducible) or 'cuda'.")]
DeviceOverride = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="Torch device: 'cpu' (reproducible) or 'cuda'. Default: the settings' own.",
        show_default=False,
    ),
]
MethodSetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="A setting of the method: KEY=VALUE, nested ones as encoder.KEY=VALUE; repeatable. "
        "'airhockey learn methods NAME' lists them.",
        show_default=False,
    ),
]


def parse_budgets(text: str) -> tuple[int | None, ...]:
    """``"4,16,64,all"`` -> ``(4, 16, 64, None)``.

    Raises:
        UserError: for anything but positive integers and ``all``.
    """
    budgets: list[int | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "all":
            budgets.append(None)
        elif part.isdigit() and int(part) > 0:
            budgets.append(int(part))
        else:
            raise UserError(f"budgets must be positive integers or 'all', separated by commas; got {text!r}")
    return tuple(budgets)


def parse_counts(text: str, option: str, minimum: int = 1) -> tuple[int, ...]:
    """``"2,4,8"`` -> ``(2, 4, 8)``; ``""`` -> ``()``.

    Raises:
        UserError: naming ``option`` for anything but integers of at least ``minimum``.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdigit() and int(p) >= minimum for p in parts):
        kind = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise UserError(f"{option} takes {kind} separated by commas; got {text!r}")
    return tuple(int(p) for p in parts)
