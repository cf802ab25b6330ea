"""The studies: ``learn compare``, ``learn benchmark`` and ``pipeline``.

Each command resolves its settings in a function of its own (``compare_config``,
``benchmark_config``, ``pipeline_config``), then calls one library function. An option left out
keeps the settings' own value: the ``CompareConfig`` defaults, or the chosen edition's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from airhockey.backends import Backend, check_backend
from airhockey.cli.common import (
    BackendOption,
    DeviceOverride,
    MethodSetOption,
    ProgressOption,
    RayAddressOption,
    RayCpusOption,
    ThreadsOption,
    backend_for,
    command_line,
    echo_comparison,
    parse_budgets,
    parse_counts,
    set_threads,
    user_errors,
)
from airhockey.cli.learn import DataArgument, learn_app
from airhockey.errors import UserError
from airhockey.learn.config import (
    SCRATCH,
    CompareConfig,
    apply_settings,
    field_names,
)
from airhockey.learn.methods import DEFAULT_METHOD

if TYPE_CHECKING:
    from airhockey.learn.protocol.benchmark import BenchmarkConfig
    from airhockey.learn.protocol.leaderboard_records import Leaderboard
    from airhockey.learn.protocol.pipeline import PipelineConfig

SMOKE_TEST = "--quick: a smoke test of the machinery; its numbers are not results"


COMPARE_FLAGS = ("budgets", "repeats", "seed", "frames_k", "training.device")
"""``CompareConfig`` settings that ``learn compare`` takes as options of their own."""


def _setting(key: str) -> str:
    """``key=default`` of a ``CompareConfig`` setting, as ``--set`` takes it."""
    value: object = CompareConfig()
    for part in key.split("."):
        value = getattr(value, part)
    if isinstance(value, tuple):
        value = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) or "()"
    return f"{key}={value}"


CompareSetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Any other setting of the comparison: KEY=VALUE, the schedule's as training.KEY=VALUE; "
        "repeatable. The settings and their defaults: "
        + ", ".join(_setting(key) for key in field_names(CompareConfig) if key not in COMPARE_FLAGS)
        + ".",
        show_default=False,
    ),
]


def compare_config(
    budgets: str | None = None,
    repeats: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    frames_k: str | None = None,
    settings: list[str] | tuple[str, ...] = (),
) -> CompareConfig:
    """The comparison's settings: ``CompareConfig``'s defaults, the options given, then ``settings``.

    Raises:
        UserError: for a malformed option, an unknown setting or a value the config refuses.
    """
    config = CompareConfig()
    if device is not None:
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, device=device))
    given = {
        "budgets": None if budgets is None else parse_budgets(budgets),
        "repeats": repeats,
        "seed": seed,
        "frames_k": None if frames_k is None else parse_counts(frames_k, "--frames-k"),
    }
    config = dataclasses.replace(config, **{k: v for k, v in given.items() if v is not None})
    return apply_settings(config, settings)


@learn_app.command("compare")
@user_errors
def learn_compare(
    data: DataArgument,
    out: Annotated[
        Path, typer.Option(help="Report folder to create (or one to finish, or to extend with other k).")
    ],
    arm: Annotated[
        list[str] | None,
        typer.Option(
            help="An arm: 'scratch', 'practitioner' (both added by default) or a pretext run folder "
            "whose encoder the classifiers load; repeatable.",
            show_default=False,
        ),
    ] = None,
    reference: Annotated[
        str,
        typer.Option(
            help="The arm the others are paired against: 'scratch', 'practitioner' or a run folder's name."
        ),
    ] = SCRATCH,
    budgets: Annotated[
        str | None,
        typer.Option(
            help="Labelled training episodes per run, comma-separated; 'all' for every one.",
            show_default=",".join("all" if b is None else str(b) for b in CompareConfig.budgets),
        ),
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Runs per budget and arm, each on another subset with another seed.",
            show_default=str(CompareConfig.repeats),
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(min=0, help="Root seed of the subsets and runs.", show_default=str(CompareConfig.seed)),
    ] = None,
    device: DeviceOverride = None,
    frames_k: Annotated[
        str | None,
        typer.Option(
            help="Context frames k to run every budget (or only --set frames_k_budget) with too, "
            "comma-separated (e.g. 2,4,8).",
            show_default=",".join(map(str, CompareConfig.frames_k)) or "none",
        ),
    ] = None,
    settings: CompareSetOption = None,
    test_data: Annotated[
        Path | None,
        typer.Option(help="A separately generated dataset to test on (its seeds disjoint from DATA's)."),
    ] = None,
    backend: BackendOption = Backend.kind,
    ray_address: RayAddressOption = Backend.ray_address,
    ray_cpus_per_task: RayCpusOption = Backend.cpus_per_task,
    workers: Annotated[
        int, typer.Option(min=1, help="With --backend local: processes running classifiers (1: this one).")
    ] = 1,
    threads: ThreadsOption = None,
    progress: ProgressOption = True,
) -> None:
    """Compare direction classifiers whose encoders start from pretext runs, or from scratch, over label
    budgets and repeats.

    Writes OUT/results.json, accuracy_vs_budget.png, accuracy_by_position.png, learning_curves.png,
    report.md and runs.jsonl; run it again into the same OUT to finish an interrupted comparison, or
    with other --frames-k, --set frames_k_budget or --set after_hit_effect to extend a finished one
    (its runs are reused).
    """
    from airhockey.learn.protocol.compare import compare_on_dataset

    if not arm:
        raise UserError("give at least one --arm: a pretext run folder (and 'scratch', added by default)")
    config = compare_config(budgets, repeats, seed, device, frames_k, settings or ())
    where = backend_for(backend, ray_address, ray_cpus_per_task, config.training.device)
    check_backend(where)  # the rest (data, arms, device, budgets) compare_on_dataset checks before writing
    set_threads(threads)
    results = compare_on_dataset(
        data,
        arm,
        out,
        config,
        reference=reference,
        test_data=test_data,
        backend=where,
        workers=workers,
        progress=progress,
        command=command_line(),
    )
    echo_comparison(results)
    plots = len(list(Path(out).glob("*.png")))
    typer.echo(f"wrote {out}/ (results.json, report.md and {plots} plots) in {results.seconds / 60:.1f} min")


def benchmark_config(
    quick: bool = False,
    full: bool = False,
    methods: str = "all",
    steps: int | None = None,
    seeds: str | None = None,
    budgets: str | None = None,
    repeats: int | None = None,
    frames_k: str | None = None,
    frames_k_budget: int | None = None,
    scratch_schedule: str | None = None,
    device: str | None = None,
    pretext_flops: float | None = None,
) -> BenchmarkConfig:
    """The benchmark's settings: the edition (``CPU``, ``FULL`` with ``full``, ``QUICK`` with
    ``quick``) with each option given (not None) in the place of the edition's.

    Raises:
        UserError: for both editions at once, a malformed option or an unknown method.
    """
    from airhockey.learn.protocol.benchmark import CPU, FULL, QUICK, parse_methods

    if quick and full:
        raise UserError("choose one of --quick and --full")
    return (QUICK if quick else FULL if full else CPU).with_overrides(
        methods=parse_methods(methods),
        steps=steps,
        flops=pretext_flops,
        pretext_seeds=None if seeds is None else parse_counts(seeds, "--seeds", minimum=0),
        device=device,
        budgets=None if budgets is None else parse_budgets(budgets),
        repeats=repeats,
        frames_k=None if frames_k is None else parse_counts(frames_k, "--frames-k"),
        frames_k_budget=frames_k_budget,
        scratch_schedule=scratch_schedule,
    )


def _override(help: str, **limits: int) -> Any:
    """An option that replaces one setting of the benchmark's edition; None keeps the edition's."""
    return typer.Option(help=f"Override: {help}", show_default=False, **limits)


@learn_app.command("benchmark")
@user_errors
def learn_benchmark(
    out: Annotated[
        Path, typer.Argument(help="Folder for the data, the pretext runs, the comparison, the leaderboard.")
    ],
    methods: Annotated[
        str, typer.Option(help="'all' (every registered method) or names separated by commas.")
    ] = "all",
    tasks: Annotated[
        str | None,
        typer.Option(
            help="Tasks separated by commas, each into OUT/TASK/ (airhockey.tasks: leftright, buttons5, "
            "...); OUT/leaderboard.md puts them side by side. Default: leftright.",
            show_default=False,
        ),
    ] = None,
    tasks_edition: Annotated[
        str, typer.Option(help="'same' (every task at the edition) or 'reduced' (tasks after the first).")
    ] = "same",
    labels: Annotated[
        str | None, typer.Option(help="Alias of --tasks: 'leftright', 'all' (buttons5) or 'both' (the two).")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="A tiny run that checks the machinery in minutes: not results.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="The protocol's full settings (3 pretext seeds, 10 draws...): for a GPU."
        ),
    ] = False,
    steps: Annotated[int | None, _override("optimiser steps of every pretext run.", min=1)] = None,
    pretext_flops: Annotated[float | None, _override("equal pretext FLOPs, not steps, e.g. 2e12.")] = None,
    seeds: Annotated[str | None, _override("pretext seeds per method, comma-separated.")] = None,
    budgets: Annotated[str | None, _override("label budgets, e.g. 1,4,16,all.")] = None,
    repeats: Annotated[int | None, _override("draws per budget and arm.", min=2)] = None,
    frames_k: Annotated[str | None, _override("extra context frames k, e.g. 4.")] = None,
    frames_k_budget: Annotated[
        int | None,
        _override("the one budget of the k > 1 runs (one of the budgets); default: every budget.", min=1),
    ] = None,
    scratch_schedule: Annotated[
        str | None, _override("the scratch arm's schedule, 'same' or 'unfrozen'.")
    ] = None,
    device: DeviceOverride = None,
    backend: BackendOption = Backend.kind,
    ray_address: RayAddressOption = Backend.ray_address,
    ray_cpus_per_task: RayCpusOption = Backend.cpus_per_task,
    workers: Annotated[
        int, typer.Option(min=1, help="With --backend local: processes for pretext and classifier runs.")
    ] = 1,
    threads: ThreadsOption = None,
    progress: ProgressOption = True,
) -> None:
    """Every pretext method (or --methods) through the comparison protocol: OUT/leaderboard.md.

    Generates (or reuses) the training and test data, trains each method's pretext runs for the
    same number of steps (or FLOPs, --pretext-flops), compares them with scratch and the oracle,
    and writes the leaderboard, for each task (--tasks) in OUT/TASK/; OUT/leaderboard.md shows
    every task's table, its headroom and the summary across tasks. Run it again to finish an
    interrupted benchmark. The editions (the CPU one by default, --full, --quick) and what each
    sets: docs/results.md, "What the editions reduce"; an option left out keeps the edition's.
    """
    from airhockey.learn.protocol.task_benchmark import parse_tasks, run_tasks_benchmark, task_configs

    names = parse_tasks(task_names(tasks, labels))
    config = benchmark_config(
        quick,
        full,
        methods,
        steps,
        seeds,
        budgets,
        repeats,
        frames_k,
        frames_k_budget,
        scratch_schedule,
        device,
        pretext_flops,
    )
    task_configs(config, names, tasks_edition)  # the edition's name, before anything else
    where = backend_for(backend, ray_address, ray_cpus_per_task, config.compare.training.device)
    if quick:
        typer.echo(SMOKE_TEST)
    set_threads(threads)
    summary = run_tasks_benchmark(
        out,
        config,
        names,
        edition=tasks_edition,
        smoke_test=quick,
        backend=where,
        workers=workers,
        progress=progress,
        command=command_line(),
        say=typer.echo,
    )
    for name, entry in summary.tasks.items():
        for line in board_lines(name, entry.board):
            typer.echo(line)


def board_lines(task: str, board: Leaderboard) -> list[str]:
    """A leaderboard on the console: per k, each arm's mean accuracy at each budget it ran,
    e.g. ``leftright k=4 scratch: 2: 61.0%, 4: 66.2%``."""
    lines = []
    for k in board.ks:
        for row in board.rows:
            cells = [
                f"{key}: {100 * cell.accuracy.accuracy_mean:.1f}%"
                for key in board.budgets
                if (cell := row.at(key, k)) is not None
            ]
            if cells:
                lines.append(f"{task} k={k} {row.arm}: {', '.join(cells)}")
    return lines


LABEL_TASKS = {"leftright": "leftright", "all": "buttons5", "both": "leftright,buttons5"}
"""The tasks ``--labels`` names: its label sets' tasks."""


def task_names(tasks: str | None, labels: str | None) -> str:
    """The ``--tasks`` of a ``learn benchmark``: as given, from its alias ``--labels``, or leftright.

    Raises:
        UserError: for both options at once, or a ``--labels`` other than ``LABEL_TASKS``'.
    """
    if labels is None:
        return "leftright" if tasks is None else tasks
    if tasks is not None:
        raise UserError("give --tasks or its alias --labels, not both")
    if labels not in LABEL_TASKS:
        raise UserError(f"--labels must be 'leftright', 'all' or 'both', got {labels!r}")
    return LABEL_TASKS[labels]


def pipeline_config(
    quick: bool = False,
    policy: str | None = None,
    method: str | None = None,
    settings: list[str] | tuple[str, ...] = (),
    seed: int | None = None,
    device: str | None = None,
) -> PipelineConfig:
    """The pipeline's settings: the edition (``FULL``, or ``QUICK`` with ``quick``) with each option
    given (not None) in the place of the edition's; the method is built once, to check it.

    Raises:
        UserError: for an unknown method or a bad setting of it.
    """
    from airhockey.learn.protocol.pipeline import FULL, QUICK, MethodChoice

    config = (QUICK if quick else FULL).with_overrides(policy=policy, seed=seed, device=device)
    if method is not None or settings:
        config = dataclasses.replace(
            config, method=MethodChoice(method or config.method.name, tuple(settings))
        )
    config.method.build()  # a bad method or setting fails here, before any file is written
    return config


@user_errors
def pipeline_command(
    out: Annotated[Path, typer.Argument(help="Folder for the data, the pretext run and the report.")],
    quick: Annotated[
        bool, typer.Option("--quick", help="A small run that shows every output in minutes on 2 CPU cores.")
    ] = False,
    policy: Annotated[
        str | None,
        typer.Option(
            help="Policy that plays the episodes: 'bundled', a saved agent's run folder or model .zip "
            "(unpickled: pass only files you trust), or 'scripted'. Default: the bundled agent.",
            show_default=False,
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help=f"Pretext method: a name from 'airhockey learn methods'. Default: {DEFAULT_METHOD}.",
            show_default=False,
        ),
    ] = None,
    settings: MethodSetOption = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0, help="Seed of the data, the pretext run and the comparison. Default: the edition's."
        ),
    ] = None,
    device: DeviceOverride = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Processes generating the data. Default: the available CPU cores."),
    ] = None,
    threads: ThreadsOption = None,
    progress: ProgressOption = True,
) -> None:
    """Generate a dataset, train a pretext method on it, and compare its classifier with scratch: the study.

    Run it again with the same arguments to finish an interrupted run. The settings are
    airhockey.learn.protocol.pipeline.FULL, or QUICK with --quick; an option left out keeps the
    edition's.
    """
    from airhockey.learn.protocol.pipeline import check_pipeline, run_pipeline

    config = pipeline_config(quick, policy, method, settings or (), seed, device)
    check_pipeline(out, config)
    if quick:
        typer.echo(SMOKE_TEST)
    set_threads(threads)
    results = run_pipeline(
        out,
        config,
        smoke_test=quick,
        workers=workers,
        progress=progress,
        command=command_line(),
        say=typer.echo,
    )
    echo_comparison(results)
    typer.echo(f"wrote {out}/report/report.md")
