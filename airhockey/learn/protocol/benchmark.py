"""One leaderboard: every registered pretext method through the comparison protocol, in one call.

``run_benchmark(out, config)`` (``airhockey learn benchmark OUT``) writes:

    OUT/data/                 the training data (``airhockey generate``)
    OUT/test_data/            separately generated test data (another seed: disjoint episodes)
    OUT/pretext/NAME-sSEED/   one pretext run per method and seed, each the same number of steps
    OUT/compare/              the comparison: scratch, the oracle and one arm per method (its seeds)
    OUT/leaderboard.json      one row per arm (below), the settings, the cost of each stage
    OUT/leaderboard.md        the table, the ranks, and the plots
    OUT/leaderboard_*.png     accuracy against labelled episodes; probe R²; one rollout per predictive method

Every stage is reused when finished and resumed when interrupted (datasets with ``--resume``,
pretext runs from ``last.pt``, the comparison from ``runs.jsonl``), so running the same command
again finishes an interrupted benchmark. Methods are read from the registry: a method added to
``learn.methods`` gets its row with no change here.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airhockey.backends import LOCAL, Backend
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig
from airhockey.learn.config import SCRATCH, ClassifyConfig, CompareConfig, PretextConfig, to_dict

LEADERBOARD_BUDGETS = (1, 4, 16, None)
"""Budgets the leaderboard shows (those the comparison ran); None: all training episodes."""
LEADERBOARD_K = (1, 4)
"""Context frames the leaderboard shows (those the comparison ran)."""
ORACLE = "oracle"
STAGES = ("generate", "pretext", "compare")
"""The benchmark's stages, whose wall seconds ``leaderboard.json`` sums over its sessions."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything that determines a benchmark; each method runs with its default settings."""

    data: GenerateConfig
    """The training data (labelled budgets are drawn from its training episodes)."""
    test_data: GenerateConfig
    """The test data: the same settings but another seed, so its episodes are disjoint."""
    pretext: PretextConfig
    """The trainer's settings of every pretext run: the same number of steps for every method."""
    compare: CompareConfig
    """The comparison's protocol."""
    methods: tuple[str, ...] = ()
    """Registered methods to run; () for all of them."""
    pretext_seeds: tuple[int, ...] = (0,)
    """Seeds of each method's pretext runs (the bootstrap resamples them)."""

    def __post_init__(self) -> None:
        if self.test_data.seed == self.data.seed:
            raise UserError("the test data needs another seed than the training data")
        if self.pretext.steps is None:
            raise UserError("a benchmark's pretext runs need a number of steps (the equal compute budget)")
        if not self.pretext_seeds:
            raise UserError("give at least one pretext seed")

    def with_labels(self, labels: str) -> BenchmarkConfig:
        """A copy for the label set ``labels`` ('leftright' or 'all'), with that set's bundled agent."""
        data = dataclasses.replace(self.data, labels=labels, policy=None)
        test = dataclasses.replace(self.test_data, labels=labels, policy=None)
        return dataclasses.replace(self, data=data, test_data=test)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data, for ``leaderboard.json``."""
        return {
            "data": self.data.to_dict(),
            "test_data": self.test_data.to_dict(),
            "pretext": to_dict(self.pretext),
            "compare": to_dict(self.compare),
            "methods": list(self.methods),
            "pretext_seeds": list(self.pretext_seeds),
        }


CPU = BenchmarkConfig(
    data=GenerateConfig(episodes=300, seed=0),
    test_data=GenerateConfig(episodes=300, seed=1),
    pretext=PretextConfig(steps=400, epochs=None),
    compare=CompareConfig(
        budgets=(1, 4, 16, None),
        repeats=3,
        training=ClassifyConfig(epochs=6, freeze_epochs=2, min_epoch_frames=1024, frame_stride=2),
        after_hit_effect=False,
        frames_k=(4,),
        search_lrs=(3e-4, 1e-3, 3e-3),
    ),
)
"""The default on a machine without a GPU, sized for 150 minutes on 2 CPU cores (see docs/results.md):
one pretext seed of 400 steps per method, budgets 1, 4, 16 and all, 3 repeats, shorter schedules,
the search over 3 learning rates x 2 schedules on 2 draws of 16 episodes."""

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
    ),
    pretext_seeds=(0, 1, 2),
)
"""The protocol's full settings (issue 14) on a GPU: 3 pretext seeds of 3,000 steps, budgets 1-64 and
all, 10 draws each, k up to 8."""

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
"""Every output in minutes, to check the machinery: its numbers are not results."""


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
    from airhockey.learn.pretext.trainer import train_pretext

    out = Path(job.out)
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
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
) -> dict[str, Any]:
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
        UserError: an unknown method, ``out`` holding a benchmark of other settings, or an error
            of any stage.
    """
    from airhockey.backends import run_tasks
    from airhockey.generate import generate
    from airhockey.jsonio import write_json
    from airhockey.learn.protocol.compare import compare_on_dataset, finished_results

    out = Path(out)
    methods = resolve_methods(config.methods)
    settings = {**config.to_dict(), "methods": methods}
    record_path = out / "benchmark.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else None
    if record is not None and _comparable(record["settings"]) != _comparable(
        json.loads(json.dumps(settings))
    ):
        raise UserError(f"{str(out)!r} holds a benchmark with other settings: choose another OUT")
    out.mkdir(parents=True, exist_ok=True)
    # Each call is a session; its stages' wall seconds are written as each stage ends, so that the
    # time of an interrupted session counts in the total of the one that finishes the benchmark.
    sessions: list[dict[str, Any]] = [] if record is None else record.get("sessions", [])
    seconds: dict[str, float] = {}
    sessions.append({"command": command, "seconds": seconds})

    def stage_done(stage: str, start: float) -> None:
        seconds[stage] = round(time.monotonic() - start, 1)
        write_json(record_path, {"settings": settings, "command": command, "sessions": sessions})

    write_json(record_path, {"settings": settings, "command": command, "sessions": sessions})
    start = time.monotonic()
    for name, gen in (("data", config.data), ("test_data", config.test_data)):
        manifest = generate(gen, out / name, workers=workers, resume=(out / name).exists(), progress=progress)
        say(f"{name}: {manifest['episodes']} episodes in {out / name}/")
    stage_done("generate", start)

    start = time.monotonic()
    in_process = backend.kind == "local" and workers == 1
    jobs = [
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
    pretext_metrics: dict[str, dict[str, Any]] = {}
    for i, metrics in run_tasks(
        run_pretext_job, jobs, backend=backend, workers=workers, progress="pretext runs" if progress else None
    ):
        pretext_metrics[jobs[i].out] = metrics
        say(f"pretext: {jobs[i].method} seed {jobs[i].seed}: {metrics['steps']} steps")
    stage_done("pretext", start)

    start = time.monotonic()
    report = out / "compare"
    finished = finished_results(report, config.compare)
    if finished is not None:
        results = finished
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
    stage_done("compare", start)

    board = leaderboard(results, jobs, pretext_metrics)
    total = {stage: round(sum(s["seconds"].get(stage, 0.0) for s in sessions), 1) for stage in STAGES}
    board.update(
        {
            "settings": settings,
            "command": command,
            "seconds": total,
            "sessions": sessions,
            "smoke_test": smoke_test,
        }
    )
    write_leaderboard(board, results, out)
    say(f"wrote {out}/leaderboard.md")
    return board


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """A benchmark's settings without the comparison's fields that only add or remove runs."""
    from airhockey.learn.protocol.compare import comparable

    return {**settings, "compare": comparable({"config": settings["compare"]})["config"]}


def _pick(entries: dict[int, Any], budgets: Sequence[int | None], largest: int) -> dict[str, Any]:
    """The entries of the leaderboard's budgets, keyed '1', '4', ..., 'all'."""
    picked = {}
    for b in budgets:
        key = largest if b is None else b
        if key in entries:
            picked["all" if b is None else str(b)] = entries[key]
    return picked


def leaderboard(
    results: dict[str, Any], jobs: Sequence[PretextJob], pretext_metrics: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The leaderboard's rows from a comparison's ``results.json`` and the pretext runs' metrics.

    Each row (an arm, and the oracle): accuracy at ``LEADERBOARD_BUDGETS`` with its interval, the
    paired difference to scratch, the gap to the oracle, accuracy at ``LEADERBOARD_K`` frames, probe
    R² for the puck's position and velocity (means of x and y), and the pretext cost (steps, seconds,
    parameters). ``ranks`` per budget: 1 + the number of arms whose whole interval lies above this
    arm's (arms whose intervals overlap share a rank: ties are ties).
    """
    budgets = results["budgets"]
    largest = budgets[-1]["labelled_episodes"]
    oracle = {o["labelled_episodes"]: o for o in results.get("oracle") or []}
    rows = []
    for arm in results["arms"]:
        by_budget = {b["labelled_episodes"]: b for b in budgets}
        accuracy = {b: by_budget[b]["arms"][arm] for b in by_budget}
        diff = {b: by_budget[b]["paired_difference"].get(arm) for b in by_budget}
        gap = {b: accuracy[b]["accuracy_mean"] - oracle[b]["head"]["accuracy_mean"] for b in oracle}
        probes = (results.get("probes") or {}).get(arm, {})
        detail = results["arm_details"][arm]
        runs = [job for job in jobs if job.method == detail.get("method")]
        metrics = [pretext_metrics.get(job.out, {}) for job in runs]
        frames_k = (results.get("frames_k") or {}).get(arm, {})
        rows.append(
            {
                "arm": arm,
                "method": detail.get("method"),
                "accuracy": _pick({b: _strip(a) for b, a in accuracy.items()}, LEADERBOARD_BUDGETS, largest),
                "difference_to_scratch": _pick(
                    {b: {k: d[k] for k in ("mean", "ci95")} for b, d in diff.items() if d},
                    LEADERBOARD_BUDGETS,
                    largest,
                ),
                "gap_to_oracle": _pick(gap, LEADERBOARD_BUDGETS, largest),
                "accuracy_k": {str(k): _strip(frames_k[str(k)]) for k in LEADERBOARD_K if str(k) in frames_k},
                "probe_r2": {
                    "puck_position": _mean([probes.get("puck_x"), probes.get("puck_y")]),
                    "puck_velocity": _mean([probes.get("puck_vx"), probes.get("puck_vy")]),
                    "bar_position": _mean([probes.get("bar_x"), probes.get("bar_y")]),
                },
                "pretext": {
                    "runs": len(runs),
                    "steps": [m.get("steps") for m in metrics],
                    "seconds": sum(m.get("train_seconds_this_session", 0.0) for m in metrics),
                    "parameters": metrics[0].get("parameters") if metrics else None,
                }
                if runs
                else None,
            }
        )
    oracle_row = {
        "arm": ORACLE,
        "accuracy": _pick({b: _strip(o["head"]) for b, o in oracle.items()}, LEADERBOARD_BUDGETS, largest),
        "boosting": _pick(
            {b: _strip(o["boosting"]) for b, o in oracle.items()}, LEADERBOARD_BUDGETS, largest
        ),
        # k frames: positions (k = 1), positions and velocities (k > 1), at the k runs' budget.
        "accuracy_k": {
            str(k): {name: _strip(o[name]) for name in ("head", "boosting")}
            for k, o in ((int(k), o) for k, o in (results.get("oracle_frames_k") or {}).items())
            if k in LEADERBOARD_K
        },
    }
    keys = list(rows[0]["accuracy"]) if rows else []
    ranks = {
        key: {
            row["arm"]: 1
            + sum(other["accuracy"][key]["ci95"][0] > row["accuracy"][key]["ci95"][1] for other in rows)
            for row in rows
        }
        for key in keys
    }
    return {
        "rows": rows,
        "oracle": oracle_row,
        "ranks": ranks,
        "budgets": keys,
        "test_data": results["data"],
        "frames_k_budget": results.get("frames_k_budget") or largest,
    }


def _strip(summary: dict[str, Any]) -> dict[str, Any]:
    return {"accuracy_mean": summary["accuracy_mean"], "ci95": summary["accuracy_ci95"]}


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def write_leaderboard(board: dict[str, Any], results: dict[str, Any], out: Path) -> Path:
    """Writes ``leaderboard.json``, ``leaderboard.md`` and the plots into ``out``."""
    from airhockey.jsonio import write_json
    from airhockey.learn.protocol.report import plot_accuracy_vs_budget, plot_probes

    write_json(out / "leaderboard.json", board)
    plot_accuracy_vs_budget(results, out / "leaderboard_accuracy.png")
    if results.get("probes"):
        plot_probes(results, out / "leaderboard_probes.png")
    rollouts = plot_rollouts(out, results)
    path = out / "leaderboard.md"
    path.write_text(render_leaderboard(board, rollouts is not None))
    return path


def plot_rollouts(out: Path, results: dict[str, Any], steps: int = 3, columns: int = 8) -> Path | None:
    """One test episode's truth and each predictive method's ``steps``-frame rollout, every other frame
    from the first that has one: small multiples, one row per method. None when no method predicts."""
    import numpy as np
    import torch

    from airhockey.generate import open_shards
    from airhockey.learn.pretext.run import PretextRun
    from airhockey.learn.protocol.report import _figure

    predictive = []
    for arm in results["arms"]:
        detail = results["arm_details"][arm]
        if detail["pretext_runs"]:
            run = PretextRun.open(detail["pretext_runs"][0]["path"])
            if run.method.predictive:
                predictive.append((arm, run))
    if not predictive:
        return None
    with open_shards(out / "test_data") as episodes:
        frames = episodes.frames(0)  # (T, H, W, 3)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    shown = list(range(steps, min(len(frames), steps + 2 * columns), 2))
    fig, axes = _figure(1 + len(predictive), len(shown), width=1.1, height=1.2)
    for col, t in enumerate(shown):
        axes[0, col].imshow(frames[t])
        axes[0, col].set_title(f"frame {t}", fontsize=7)
    for row, (arm, run) in enumerate(predictive, start=1):
        with torch.no_grad():
            _, k_step = run.method.predict_episode(run.model(), x, steps)
        images = (k_step.nan_to_num(0.0).clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy()
        for col, t in enumerate(shown):
            axes[row, col].imshow(images[t])
        axes[row, 0].set_ylabel(arm, fontsize=7)
    axes[0, 0].set_ylabel("truth", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    path = out / "leaderboard_rollouts.png"
    fig.suptitle(f"{steps}-frame rollouts (predictions fed back) of test episode 0", fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def _cell(entry: dict[str, Any] | None) -> str:
    from airhockey.learn.protocol.report import _interval, _pct

    return "n/a" if not entry else f"{_pct(entry['accuracy_mean'])} {_interval(entry['ci95'])}"


def render_leaderboard(board: dict[str, Any], rollouts: bool) -> str:
    """The leaderboard page: the table, the ranks (only where intervals separate), the plots."""
    from airhockey.learn.protocol.report import SMOKE_TEST, _interval, _points

    keys = board["budgets"]
    lines = ["# Leaderboard: pretext methods through one protocol", ""]
    if board.get("smoke_test"):
        lines += [SMOKE_TEST, ""]
    test = board["test_data"]
    lines += [
        f"Training data `{test['path']}` ({test['train_episodes']} training episodes); test data "
        f"`{test.get('test_path')}` ({test['test_episodes']} episodes, generated separately). Accuracy on "
        "the frames before the hit, with 95% bootstrap intervals (repeats, pretext runs and test episodes "
        "resampled); differences paired with scratch; the oracle is the same head on the true state. "
        f"k: the frames the classifier reads, at {board.get('frames_k_budget', 'the largest number of')} "
        "labelled episodes.",
        "",
        "| arm | "
        + " | ".join(f"{k} ep." for k in keys)
        + " | "
        + " | ".join(f"minus scratch, {k} ep." for k in keys)
        + " | gap to oracle ("
        + ", ".join(keys)
        + ") | k = 1 / k = 4 | probe R²: puck position / velocity | "
        "pretext steps, seconds, parameters |",
        "| --- |" + " --- |" * (2 * len(keys) + 4),
    ]
    for row in board["rows"]:
        acc = [_cell(row["accuracy"].get(k)) for k in keys]
        diff = [
            f"{_points(d['mean'])} {_interval(d['ci95'])}"
            if (d := row["difference_to_scratch"].get(k))
            else "-"
            for k in keys
        ]
        gaps = ", ".join(
            _points(row["gap_to_oracle"][k]) if k in row["gap_to_oracle"] else "n/a" for k in keys
        )
        ks = " / ".join(_cell(row["accuracy_k"].get(k)) for k in ("1", "4"))
        probe = row["probe_r2"]
        probes = " / ".join(
            "n/a" if probe[v] is None else f"{probe[v]:.2f}" for v in ("puck_position", "puck_velocity")
        )
        p = row["pretext"]
        cost = "-" if p is None else f"{p['steps']}, {p['seconds']:.0f} s, {p['parameters']:,}"
        lines.append(
            f"| {row['arm']} | " + " | ".join(acc + diff) + f" | {gaps} | {ks} | {probes} | {cost} |"
        )
    oracle = board["oracle"]
    lines.append(
        f"| {ORACLE} (head; boosted trees) | "
        + " | ".join(f"{_cell(oracle['accuracy'].get(k))}; {_cell(oracle['boosting'].get(k))}" for k in keys)
        + " |"
        + " |" * (len(keys) + 1)  # no differences to scratch, no gap to itself
        + " "
        + " / ".join(
            "; ".join(
                _cell(oracle.get("accuracy_k", {}).get(k, {}).get(name)) for name in ("head", "boosting")
            )
            for k in ("1", "4")
        )
        + " | | |"
    )
    lines += [
        "",
        "## Ranks",
        "",
        "Rank 1 + the number of arms whose whole interval lies above; equal ranks are ties.",
        "",
    ]
    for key in keys:
        ranked = sorted(board["ranks"][key].items(), key=lambda item: item[1])
        lines.append(
            f"- {key} labelled episodes: " + ", ".join(f"{arm} {rank}" for arm, rank in ranked) + "."
        )
    lines += [
        "",
        "![accuracy vs budget](leaderboard_accuracy.png)",
        "",
        "![probe R²](leaderboard_probes.png)",
    ]
    if rollouts:
        lines += ["", "![rollouts](leaderboard_rollouts.png)"]
    seconds = board["seconds"]
    sessions = len(board.get("sessions", [])) or 1
    lines += [
        "",
        f"Time (wall, summed over the {sessions} call{'s' if sessions > 1 else ''} that made it): "
        f"generation {seconds['generate']:.0f} s, pretext {seconds['pretext']:.0f} s, "
        f"comparison {seconds['compare']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"
