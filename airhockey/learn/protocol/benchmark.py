"""One leaderboard: every registered pretext method through the comparison protocol, in one call.

``run_benchmark(out, config)`` (``airhockey learn benchmark OUT``) writes:

    OUT/data/                 the training data (``airhockey generate``)
    OUT/test_data/            separately generated test data (another seed: disjoint episodes)
    OUT/pretext/NAME-sSEED/   one pretext run per method and seed, each the same number of steps
                              (or, with a FLOPs budget, the same compute)
    OUT/compare/              the comparison: scratch, the oracle and one arm per method (its seeds)
    OUT/leaderboard.json      one row per arm (below), the settings, the cost of each stage
    OUT/leaderboard.md        the table, the ranks, and the plots
    OUT/leaderboard_*.png     accuracy against labelled episodes; probe R²; one rollout per predictive method

Every stage is reused when finished and resumed when interrupted (datasets with ``--resume``,
pretext runs from ``last.pt``, the comparison from ``runs.jsonl``), so running the same command
again finishes an interrupted benchmark. Methods are read from the registry: a method added to
``learn.methods`` gets its row with no change here.

The data is a task's (``airhockey.tasks.TASKS``, ``BenchmarkConfig.task``); ``learn benchmark
OUT --tasks a,b`` runs one such benchmark per task in ``OUT/<task>/`` and the leaderboard across
them (``task_benchmark``).

Methods are compared at equal pretext steps; with ``--pretext-flops F`` (``with_overrides(flops=F)``)
every pretext run gets a budget of F FLOPs (``PretextConfig.flops``) in the place of the edition's
steps, each method as many steps as F buys it (a transformer step and a ConvLSTM step cost
differently). Such a benchmark has other settings than the equal-steps one, so it goes in an OUT of
its own (an OUT holding the other refuses it, as any change of settings); its folders keep their names.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airhockey.backends import LOCAL, Backend, check_backend, run_tasks
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig
from airhockey.jsonio import write_json
from airhockey.learn.config import (
    SCRATCH,
    ClassifyConfig,
    CompareConfig,
    PretextConfig,
    check_budgets_possible,
    to_dict,
)
from airhockey.learn.protocol.leaderboard import (
    TASK_OF_LABELS,
    Leaderboard,
    leaderboard,
    write_leaderboard,
)
from airhockey.learn.protocol.runlog import comparable, finished_results
from airhockey.learn.protocol.summaries import GOAL_BUDGET
from airhockey.records import read_record, to_json
from airhockey.tasks import DEFAULT_TASK, Task, get_task

STAGES = ("generate", "pretext", "compare")
"""The benchmark's stages, whose wall seconds ``leaderboard.json`` sums over its sessions."""


def task_data(task: Task, base: GenerateConfig, split: str) -> GenerateConfig:
    """The data of ``task`` at an edition's sizes: ``base``'s episodes, seed and frame size.

    Args:
        task: the task preset.
        base: the edition's training or test data settings.
        split: 'train' for the training data, 'test' for the test data (a task with held-out
            layouts draws the test data's from the test layouts).
    """
    made = getattr(task, "generate_config", None)
    if made is None:
        return dataclasses.replace(base, labels=task.labels, policy=task.policy)
    config = made(base.episodes, base.seed, split)
    return dataclasses.replace(config, width=base.width, height=base.height)


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything that determines a benchmark; each method runs with its default settings."""

    data: GenerateConfig
    """The training data (labelled budgets are drawn from its training episodes)."""
    test_data: GenerateConfig
    """The test data: the same settings but another seed, so its episodes are disjoint."""
    pretext: PretextConfig
    """The trainer's settings of every pretext run: the same number of steps (or of FLOPs, ``flops``)
    for every method."""
    compare: CompareConfig
    """The comparison's protocol."""
    methods: tuple[str, ...] = ()
    """Registered methods to run; () for all of them."""
    pretext_seeds: tuple[int, ...] = (0,)
    """Seeds of each method's pretext runs (the bootstrap resamples them)."""
    task: str = DEFAULT_TASK
    """The task (``airhockey.tasks.TASKS``) whose data ``data`` and ``test_data`` are (``with_task``)."""

    def __post_init__(self) -> None:
        get_task(self.task)
        if self.test_data.seed == self.data.seed:
            raise UserError("the test data needs another seed than the training data")
        if self.pretext.steps is None and self.pretext.flops is None:
            raise UserError("a benchmark's pretext runs need a number of steps or FLOPs (the equal budget)")
        if not self.pretext_seeds:
            raise UserError("give at least one pretext seed")

    def with_overrides(
        self,
        *,
        methods: tuple[str, ...] | None = None,
        steps: int | None = None,
        flops: float | None = None,
        pretext_seeds: tuple[int, ...] | None = None,
        device: str | None = None,
        **compare: Any,
    ) -> BenchmarkConfig:
        """A copy with the settings given; one left out or None keeps this config's.

        Args:
            methods: registered methods to run; () for all of them.
            steps: optimiser steps of every pretext run.
            flops: a FLOPs budget of every pretext run, in the place of the edition's steps (with
                ``steps`` too, the smaller budget wins).
            pretext_seeds: seeds of each method's pretext runs.
            device: the torch device of the pretext runs and of the classifiers.
            **compare: ``CompareConfig`` fields, e.g. ``budgets``, ``repeats``, ``frames_k``.
        """
        pretext, compare_config = self.pretext, self.compare
        if flops is not None:
            pretext = dataclasses.replace(pretext, flops=flops, steps=steps)
        elif steps is not None:
            pretext = dataclasses.replace(pretext, steps=steps)
        if device is not None:
            pretext = dataclasses.replace(pretext, device=device)
            training = dataclasses.replace(compare_config.training, device=device)
            compare_config = dataclasses.replace(compare_config, training=training)
        given = {name: value for name, value in compare.items() if value is not None}
        return dataclasses.replace(
            self,
            pretext=pretext,
            compare=dataclasses.replace(compare_config, **given),
            methods=self.methods if methods is None else methods,
            pretext_seeds=self.pretext_seeds if pretext_seeds is None else pretext_seeds,
        )

    def with_task(self, name: str) -> BenchmarkConfig:
        """A copy whose data is the task ``name``'s (``task_data``), at this config's sizes.

        Raises:
            UserError: for a task ``airhockey.tasks.TASKS`` does not know.
        """
        task = get_task(name)
        return dataclasses.replace(
            self,
            data=task_data(task, self.data, "train"),
            test_data=task_data(task, self.test_data, "test"),
            task=name,
        )

    def reduced(self) -> BenchmarkConfig:
        """A reduced edition of this one, for a task added to a benchmark: one budget, the one the
        goal is judged at (the largest of at most ``GOAL_BUDGET`` episodes, else the smallest), with
        every k; half the draws (at least 2); the first pretext seed."""
        budgets = [b for b in self.compare.budgets if b is not None]
        scarce = [b for b in budgets if b <= GOAL_BUDGET]
        budget = max(scarce) if scarce else (min(budgets) if budgets else None)
        compare = dataclasses.replace(
            self.compare,
            budgets=(budget,),
            repeats=max(2, self.compare.repeats // 2),
            frames_k_budget=None,
        )
        return dataclasses.replace(self, compare=compare, pretext_seeds=self.pretext_seeds[:1])

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data, for ``leaderboard.json``."""
        return {
            "data": self.data.to_dict(),
            "test_data": self.test_data.to_dict(),
            "pretext": to_dict(self.pretext),
            "compare": to_dict(self.compare),
            "methods": list(self.methods),
            "pretext_seeds": list(self.pretext_seeds),
            "task": self.task,
        }


CPU = BenchmarkConfig(
    data=GenerateConfig(episodes=300, seed=0),
    test_data=GenerateConfig(episodes=300, seed=1),
    pretext=PretextConfig(steps=400, epochs=None),
    compare=CompareConfig(
        budgets=(2, 4, 8, 16, 64),
        repeats=3,
        training=ClassifyConfig(
            epochs=6, freeze_epochs=2, min_epoch_frames=1024, frame_stride=2, test_frame_stride=2
        ),
        after_hit_effect=False,
        frames_k=(4,),
        search_lrs=(1e-3, 3e-3),
        search_norms=("scaler", "batchnorm"),
        search_draws=1,
    ),
    pretext_seeds=(0, 1, 2),
)
"""The default on a machine without a GPU (its run time is in docs/results.md): three pretext
seeds of 400 steps per method, so that the intervals include the pretext runs' variance; budgets
2, 4, 8, 16 and 64, each with k = 1 and 4 frames read; 3 repeats, shorter schedules, every
other frame of the test episodes scored; the search,
per arm and k, over 2 learning rates x 2 schedules x 2 head normalisations on 1 draw of 16
episodes."""

FULL = BenchmarkConfig(
    data=GenerateConfig(episodes=300, seed=0),
    test_data=GenerateConfig(episodes=300, seed=1),
    pretext=PretextConfig(steps=3000, epochs=None, device="cuda"),
    compare=CompareConfig(
        budgets=(1, 2, 4, 8, 16, 64, None),
        repeats=10,
        training=ClassifyConfig(device="cuda"),
        after_hit_effect=False,
        frames_k=(2, 4, 8),
        search_lrs=(3e-4, 1e-3, 3e-3),
        search_norms=("scaler", "batchnorm"),
        search_epochs=(10, 30),
    ),
    pretext_seeds=(0, 1, 2),
)
"""The protocol's full settings on a GPU: 3 pretext seeds of 3,000 steps, budgets 1-64 and
all, 10 draws each, k up to 8 at every budget; the search, per arm and k, over 3 learning rates x
2 schedules x 2 head normalisations x 10 or 30 epochs on 2 draws of 16 episodes."""

QUICK = BenchmarkConfig(
    data=GenerateConfig(episodes=50, width=32, height=32, seed=0),
    test_data=GenerateConfig(episodes=20, width=32, height=32, seed=1),
    pretext=PretextConfig(steps=20, epochs=None, batch_size=8),
    compare=CompareConfig(
        budgets=(1, 4, None),
        repeats=2,
        training=ClassifyConfig(epochs=2, freeze_epochs=1, min_epoch_frames=64, frame_stride=4),
        after_hit_effect=False,
        frames_k=(4,),
        search_lrs=(1e-3,),
        search_budget=8,
        search_draws=1,
    ),
)
"""Every output in minutes, to check the machinery (k = 4 at each of its budgets): its numbers are
not results."""


def check_benchmark(out: str | Path, config: BenchmarkConfig, backend: Backend = LOCAL) -> None:
    """Everything a benchmark can check before it writes anything, so that a refused command leaves
    nothing behind (and its corrected form is not refused as "other settings"): the methods and
    their settings against the data's frame size, the devices, a FLOPs budget against one step of
    each method, the budgets against the training
    episodes the data will have, that the env renders, that ``out`` can be written, and the backend.

    Raises:
        UserError: one line naming the setting or path.
    """
    from airhockey.generate.config import check_settings
    from airhockey.generate.records import LABEL_NAMES
    from airhockey.learn.device import check_device
    from airhockey.learn.methods import get_method
    from airhockey.paths import check_output_dir

    out = check_output_dir(out, "benchmark folder")
    size = (config.data.height, config.data.width)
    for name in resolve_methods(config.methods):
        try:
            get_method(name)().with_image_size(size)
        except ValueError as err:
            raise UserError(f"method {name} cannot read {size[1]}x{size[0]} frames: {err}") from None
    check_device(config.pretext.device, config.pretext.precision)
    check_device(config.compare.training.device, config.compare.training.precision)
    if config.pretext.flops is not None:  # a budget below one step of a method, before the data
        from airhockey.learn.pretext.flops import budget_steps, synthetic_step_flops

        steps = synthetic_step_flops(resolve_methods(config.methods), config.pretext, size)
        for name, flops in steps.items():
            budget_steps(config.pretext.flops, flops, f"{name} at batch size {config.pretext.batch_size}")
    check_budgets_possible(config.compare, config.data.episodes, len(LABEL_NAMES[config.data.labels]))
    check_settings(config.data, out / "data")
    check_backend(backend)


def resolve_methods(names: Sequence[str]) -> list[str]:
    """The methods to run: ``names``, or every registered method for ().

    Raises:
        UserError: for a name the registry does not know.
    """
    from airhockey.learn.methods import get_method, method_names

    chosen = list(names) or method_names()
    for name in chosen:
        get_method(name)
    return chosen


def parse_methods(text: str) -> tuple[str, ...]:
    """``"all"`` -> ``()``; ``"a,b"`` -> ``("a", "b")`` (checked against the registry)."""
    if text.strip().lower() == "all":
        return ()
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    resolve_methods(names)
    return names


@dataclass(frozen=True)
class PretextJob:
    """One pretext run of a benchmark: a method, a seed, where it goes."""

    method: str
    seed: int
    out: str
    data: str
    config: dict[str, Any] = field(default_factory=dict)
    """The trainer's settings (``PretextConfig`` as plain data), the seed not yet applied."""
    in_process: bool = True
    """Whether it runs in the driver's process (which keeps the driver's torch threads); a worker
    process or Ray task uses one thread, since on busy cores more threads run many times slower."""


def run_pretext_job(job: PretextJob) -> dict[str, Any]:
    """Trains (or resumes, or reuses) one pretext run; returns its ``metrics.json``. A task of
    ``backends.run_tasks``: on Ray its folder must be on a filesystem the driver reads too."""
    import torch

    from airhockey.learn.config import from_dict
    from airhockey.learn.methods import get_method
    from airhockey.learn.pretext.run import read_metrics
    from airhockey.learn.pretext.trainer import train_pretext

    out = Path(job.out)
    finished = read_metrics(out)
    if finished is not None:
        return finished
    if not job.in_process:
        torch.set_num_threads(1)
    config = dataclasses.replace(from_dict(PretextConfig, job.config), seed=job.seed)
    resume = (out / "last.pt").is_file()
    method = None if resume else get_method(job.method)()
    return train_pretext(job.data, out, method, config, resume=resume, progress=False)


def run_benchmark(
    out: str | Path,
    config: BenchmarkConfig,
    *,
    smoke_test: bool = False,
    backend: Backend = LOCAL,
    workers: int | None = 1,
    progress: bool = True,
    command: str = "",
    say: Callable[[str], None] = print,
) -> Leaderboard:
    """Generates (or reuses) the data, trains every method's pretext runs, compares them, and
    writes the leaderboard into ``out``.

    Args:
        out: the benchmark folder (created, or reused to finish an interrupted benchmark).
        config: the settings, e.g. ``CPU``, ``FULL`` or ``QUICK``.
        smoke_test: mark the leaderboard as a check of the machinery whose numbers are not results.
        backend: where pretext runs and classifier runs go (``backends.Backend``).
        workers: local processes for them; 1 runs them one after another in this process.
        progress: show progress bars.
        command: the command line, recorded in ``leaderboard.json``.
        say: where one line per stage goes.

    Returns:
        What ``leaderboard.json`` holds.

    Raises:
        UserError: anything ``check_benchmark`` refuses (before anything is written), ``out``
            holding a benchmark of other settings, or an error of any stage.
    """
    from airhockey.generate import generate
    from airhockey.learn.protocol.compare import compare_on_dataset

    check_benchmark(out, config, backend)
    out = Path(out)
    methods = resolve_methods(config.methods)
    sessions = Sessions.open(out / "benchmark.json", {**config.to_dict(), "methods": methods}, command)
    out.mkdir(parents=True, exist_ok=True)
    sessions.write()
    start = time.monotonic()
    for name, gen in (("data", config.data), ("test_data", config.test_data)):
        manifest = generate(gen, out / name, workers=workers, resume=(out / name).exists(), progress=progress)
        say(f"{name}: {manifest['episodes']} episodes in {out / name}/")
    sessions.stage_done("generate", start)

    start = time.monotonic()
    jobs = pretext_jobs(out, config, methods, in_process=backend.kind == "local" and workers == 1)
    pretext_metrics = run_pretext_jobs(jobs, backend, workers, progress, say)
    sessions.stage_done("pretext", start)

    start = time.monotonic()
    report = out / "compare"
    results = finished_results(report, config.compare)
    if results is not None:
        say(f"compare: reusing the finished comparison in {report}/")
    else:
        arms: list[Any] = [SCRATCH] + [[job.out for job in jobs if job.method == name] for name in methods]
        results = compare_on_dataset(
            out / "data",
            arms,
            report,
            config.compare,
            test_data=out / "test_data",
            backend=backend,
            workers=workers,
            smoke_test=smoke_test,
            progress=progress,
            command=command,
        )
    sessions.stage_done("compare", start)

    by_method = {
        name: [pretext_metrics.get(job.out, {}) for job in jobs if job.method == name] for name in methods
    }
    board = leaderboard(
        results,
        by_method,
        settings=sessions.settings,
        command=command,
        seconds=sessions.total(),
        sessions=sessions.sessions,
        smoke_test=smoke_test,
        task=config.task,
    )
    write_leaderboard(board, results, out)
    say(f"wrote {out}/leaderboard.md")
    return board


@dataclass(frozen=True)
class SessionRecord:
    """One call's entry of ``benchmark.json``."""

    command: str
    """The command line."""
    seconds: dict[str, float]
    """Wall seconds by stage finished in this call."""


@dataclass(frozen=True)
class BenchmarkRecord:
    """``benchmark.json`` as read back."""

    settings: dict[str, Any]
    """The benchmark's settings as plain data."""
    command: str
    """The command of the latest call."""
    sessions: tuple[SessionRecord, ...]
    """Each call's command and seconds, oldest first."""


@dataclass
class Sessions:
    """``benchmark.json``: the benchmark's settings and, per call (a session), its stages' wall seconds.

    Each stage's seconds are written as it ends, so that the time of an interrupted session counts
    in the total of the one that finishes the benchmark."""

    path: Path
    settings: dict[str, Any]
    command: str
    sessions: list[dict[str, Any]]
    """Each session's command and seconds by stage; the last is this call's."""

    @classmethod
    def open(cls, path: Path, settings: dict[str, Any], command: str) -> Sessions:
        """The record at ``path`` with a new session for this call.

        Raises:
            UserError: when ``path`` holds a benchmark with other settings, or is damaged.
        """
        settings = json.loads(json.dumps(settings))
        sessions: list[dict[str, Any]] = []
        if path.is_file():
            record = read_record(BenchmarkRecord, path, "benchmark record")
            sessions = [to_json(session) for session in record.sessions]
            if not isinstance(record.settings.get("compare"), dict):
                raise UserError(
                    f"{path}: field 'settings.compare': missing or not an object: choose another OUT"
                )
            if _comparable(record.settings) != _comparable(settings):
                raise UserError(
                    f"{str(path.parent)!r} holds a benchmark with other settings: choose another OUT"
                )
        sessions.append({"command": command, "seconds": {}})
        return cls(path, settings, command, sessions)

    def write(self) -> None:
        """Writes the record."""
        write_json(self.path, {"settings": self.settings, "command": self.command, "sessions": self.sessions})

    def stage_done(self, stage: str, start: float) -> None:
        """Records this session's seconds of ``stage`` since ``start`` (``time.monotonic``)."""
        self.sessions[-1]["seconds"][stage] = round(time.monotonic() - start, 1)
        self.write()

    def total(self) -> dict[str, float]:
        """Each stage's seconds summed over the sessions."""
        return {stage: round(sum(s["seconds"].get(stage, 0.0) for s in self.sessions), 1) for stage in STAGES}


def pretext_jobs(
    out: Path, config: BenchmarkConfig, methods: Sequence[str], in_process: bool
) -> list[PretextJob]:
    """One pretext job per method and seed, each in ``out/pretext/NAME-sSEED``."""
    return [
        PretextJob(
            name,
            seed,
            str(out / "pretext" / f"{name}-s{seed}"),
            str(out / "data"),
            to_dict(config.pretext),
            in_process,
        )
        for name in methods
        for seed in config.pretext_seeds
    ]


def run_pretext_jobs(
    jobs: Sequence[PretextJob],
    backend: Backend,
    workers: int | None,
    progress: bool,
    say: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """Runs (or reuses) the pretext jobs as tasks; returns each run's metrics by its folder."""
    metrics: dict[str, dict[str, Any]] = {}
    for i, run_metrics in run_tasks(
        run_pretext_job, jobs, backend=backend, workers=workers, progress="pretext runs" if progress else None
    ):
        metrics[jobs[i].out] = run_metrics
        say(f"pretext: {jobs[i].method} seed {jobs[i].seed}: {run_metrics['steps']} steps")
    return metrics


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """A benchmark's settings without the comparison's fields that only add or remove runs; a
    record older than the task field names the task of its data's labels, one older than the
    FLOPs budget has none."""
    labels = settings.get("data", {}).get("labels") if isinstance(settings.get("data"), dict) else None
    pretext = settings.get("pretext")
    return {
        "task": TASK_OF_LABELS.get(labels, DEFAULT_TASK) if isinstance(labels, str) else DEFAULT_TASK,
        **settings,
        "pretext": {"flops": None, **pretext} if isinstance(pretext, dict) else pretext,
        "compare": comparable({"config": settings["compare"]}, "benchmark.json")["config"],
    }
