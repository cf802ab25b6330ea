"""The ``airhockey`` command line: one sub-app per pipeline stage, each command a thin wrapper.

``env`` (``cli.env``), ``agent`` (``cli.agent``), ``generate`` and ``data`` (``cli.data``), ``learn``
(``cli.learn``; its comparisons in ``cli.study``) and ``pipeline`` (``cli.study``). Heavy imports
(torch, stable-baselines3, h5py) happen inside the commands, so that ``airhockey --help`` is instant
and a plain install (no extras) runs every command whose stage it has; the others say which extra to
install (``airhockey.extras``).

``airhockey --version`` prints the version; typer's ``--install-completion`` and ``--show-completion``
install or print the completion script of the shell they run in (bash, zsh, fish, PowerShell).
"""

from __future__ import annotations

from typing import Annotated

import typer

from airhockey import __version__
from airhockey.cli.agent import agent_app
from airhockey.cli.common import OneLineErrors
from airhockey.cli.data import data_app, generate_command
from airhockey.cli.env import env_app
from airhockey.cli.learn import learn_app
from airhockey.cli.study import pipeline_command

app = typer.Typer(
    cls=OneLineErrors,
    help="Air hockey in MuJoCo: environment, agent, labelled video datasets, representation learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"airhockey {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Options of the ``airhockey`` command itself; each stage is a sub-command."""


app.add_typer(env_app, name="env")
app.add_typer(agent_app, name="agent")
app.command("generate")(generate_command)
app.add_typer(data_app, name="data")
app.add_typer(learn_app, name="learn")
app.command("pipeline")(pipeline_command)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="airhockey")
