"""A fixed slice of the CPU edition at the old code and at the new defaults: CPU seconds per stage,
the ratio new/old, and the accuracies of both with their paired differences.

    git worktree add /tmp/old bb8e802        # the code before the study's savings
    python benchmarks/study_slice.py --old-tree /tmp/old

One invocation runs the slice twice, each in a fresh process with one thread (torch, OpenMP,
BLAS): with the code of ``--old-tree`` (a checkout of an earlier commit: its SSIM, ConvLSTM
layout, probe solver, and no precision or validation settings) and with this checkout's
defaults. The slice is the CPU edition's (``benchmark.CPU``) settings cut down: two methods with
short pretext runs, scratch, budgets 4 and all, k = 1 and 4 (k = 4 at all), two draws (the fewest
the protocol allows), no search, on a small dataset the slice generates into a temporary folder.
Each stage's CPU seconds are summed by wrapping the library function that does it (generation,
a pretext run, a classifier run, the oracle, the probes); "other" is the rest of the run (reading
data, bootstrap statistics, the report and plots). Both runs use the same seeds, so their
classifier runs see the same episodes and are paired run by run: the paired difference new - old
of accuracy on the same test frames, with a 95% bootstrap interval over test episodes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

METHODS = ("next_frame", "skip_clip")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def slice_config(episodes: int, test_episodes: int, steps: int) -> Any:
    """The CPU edition cut down to the slice (``benchmark.CPU``'s schedule, data and steps smaller)."""
    from airhockey.learn.protocol.benchmark import CPU

    return dataclasses.replace(
        CPU,
        data=dataclasses.replace(CPU.data, episodes=episodes),
        test_data=dataclasses.replace(CPU.test_data, episodes=test_episodes),
        pretext=dataclasses.replace(CPU.pretext, steps=steps),
        methods=METHODS,
        compare=dataclasses.replace(CPU.compare, budgets=(4, None), repeats=2, frames_k=(4,), search_lrs=()),
    )


def cpu_seconds() -> float:
    """CPU seconds of this process (all its threads) and of its children that have ended."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class Stages:
    """CPU seconds (``cpu_seconds``) by stage, summed over calls of wrapped functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.depth = 0

    def wrap(self, module: Any, name: str, stage: Callable[..., str]) -> None:
        """Counts the calls of ``module.name`` under ``stage(*args)`` (outermost wrapped call only)."""
        if not hasattr(module, name):
            return
        inner = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.depth:
                return inner(*args, **kwargs)
            self.depth += 1
            start = cpu_seconds()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[stage(*args)] += cpu_seconds() - start
                self.depth -= 1

        setattr(module, name, timed)


def run_slice(out: Path, result: Path, episodes: int, test_episodes: int, steps: int) -> None:
    """Runs the slice into ``out`` with the ``airhockey`` on ``sys.path``; writes ``result`` (JSON)."""
    import torch

    import airhockey
    import airhockey.generate
    from airhockey.learn import config as learn_config
    from airhockey.learn.protocol import benchmark, compare, jobs

    torch.set_num_threads(1)
    stages = Stages()
    stages.wrap(airhockey.generate, "generate", lambda *a: "generate")
    stages.wrap(benchmark, "run_pretext_job", lambda job: f"pretext {job.method}")
    stages.wrap(jobs, "run_classifier_job", lambda job, *a: f"classifier runs, k = {job.context_frames}")
    stages.wrap(compare, "oracle_records", lambda *a: "oracle")
    stages.wrap(compare, "oracle_search", lambda *a: "oracle")
    stages.wrap(compare, "probe_summary", lambda *a: "probes")  # the code that probes in the driver
    stages.wrap(jobs, "run_probe_job", lambda *a: "probes")  # the code that probes in tasks
    config = slice_config(episodes, test_episodes, steps)
    start = cpu_seconds()
    benchmark.run_benchmark(out, config, workers=1, progress=False, say=lambda line: None)
    total = cpu_seconds() - start
    records = [
        json.loads(line) for line in (out / "compare" / "runs.jsonl").read_text().splitlines() if line.strip()
    ]
    settings = {
        name: {
            field.name: repr(getattr(getattr(learn_config, name)(), field.name))
            for field in dataclasses.fields(getattr(learn_config, name))
            if field.name == "precision" or field.name.startswith("val") or "test" in field.name
        }
        for name in ("PretextConfig", "ClassifyConfig")
    }
    runs = [
        {
            key: r[key]
            for key in ("arm", "labelled_episodes", "context_frames", "repeat", "accuracy", "train_seconds")
        }
        | {"episode_hits": r["episode_hits"], "episode_frames": r["episode_frames"]}
        for r in records
    ]
    results = json.loads((out / "compare" / "results.json").read_text())
    payload = {
        "code": str(Path(airhockey.__file__).parent),
        "seconds": {**stages.seconds, "other": total - sum(stages.seconds.values()), "total": total},
        "settings": settings,
        "runs": runs,
        "probes": results.get("probes"),
    }
    result.write_text(json.dumps(payload))


def launch(tree: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Runs the slice in a fresh one-thread process with the code of ``tree``; returns its result."""
    result = out.with_suffix(".json")
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run-slice",
        str(out),
        "--result",
        str(result),
        "--episodes",
        str(args.episodes),
        "--test-episodes",
        str(args.test_episodes),
        "--steps",
        str(args.steps),
    ]
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(tree)}
    subprocess.run(command, cwd=tree, env=env, check=True)
    return json.loads(result.read_text())


def paired(new: dict[str, Any], old: dict[str, Any]) -> tuple[float, float, list[float], list[float]]:
    """New and old accuracy of one group (its draws pooled), the old one's interval and the paired
    difference's."""
    import numpy as np

    from airhockey.learn.protocol.stats import bootstrap_accuracy

    frames = np.asarray(new[0]["episode_frames"], np.float64)
    hits_new = np.asarray([r["episode_hits"] for r in new], np.float64)
    hits_old = np.asarray([r["episode_hits"] for r in old], np.float64)
    _, interval = bootstrap_accuracy(hits_new - hits_old, frames)
    old_accuracy, old_interval = bootstrap_accuracy(hits_old, frames)
    return float(hits_new.sum() / (len(new) * frames.sum())), old_accuracy, old_interval, interval


def report(new: dict[str, Any], old: dict[str, Any]) -> None:
    """Prints the stage table and the accuracy table."""
    from common import print_table

    print(f"old code: {old['code']}\nnew code: {new['code']}")
    print(f"new settings found: {new['settings']}")
    order = ["generate"] + [f"pretext {m}" for m in METHODS]
    order += sorted(k for k in {*new["seconds"], *old["seconds"]} if k.startswith("classifier"))
    order += ["oracle", "probes", "other", "total"]
    rows = []
    for stage in order:
        o, n = old["seconds"].get(stage, 0.0), new["seconds"].get(stage, 0.0)
        rows.append([stage, o, n, f"{n / o:.2f}" if o else "-"])
    print_table("study slice: CPU seconds per stage, 1 thread", ["stage", "old", "new", "new/old"], rows)
    groups: dict[tuple[str, int, int], dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for name, side in (("new", new), ("old", old)):
        for r in sorted(side["runs"], key=lambda r: r["repeat"]):
            key = (r["arm"], r["labelled_episodes"], r["context_frames"])
            groups[key].setdefault(name, []).append(r)
    rows = []
    for (arm, budget, k), sides in sorted(groups.items()):
        acc_new, acc_old, (old_lo, old_hi), (lo, hi) = paired(sides["new"], sides["old"])
        rows.append(
            [
                arm,
                budget,
                k,
                f"{acc_old:.3f} [{old_lo:.3f}, {old_hi:.3f}]",
                f"{acc_new:.3f}",
                f"{acc_new - acc_old:+.3f} [{lo:+.3f}, {hi:+.3f}]",
            ]
        )
    print_table(
        "study slice: test accuracy (2 draws pooled), paired new - old [95% bootstrap over test episodes]",
        ["arm", "episodes", "k", "old", "new", "new - old"],
        rows,
    )
    rows = []
    for arm, r2 in (new["probes"] or {}).items():
        for name, value in r2.items():
            rows.append([arm, name, f"{old['probes'][arm][name]:.6f}", f"{value:.6f}"])
    print_table("study slice: probe R²", ["arm", "variable", "old", "new"], rows)


def probe_shapes(frames: tuple[int, ...], features: int = 4096, test_frames: int = 1000) -> None:
    """Prints ``probe_r2``'s CPU seconds by solver on random features as wide as the encoder's,
    for each number of training frames (the CPU edition's probes train on about 4,100), and the
    largest difference of R² between the solvers."""
    import numpy as np
    from common import print_table

    from airhockey.learn.downstream.probes import POSITIONS, PROBE_SOLVERS, probe_r2

    warm = np.random.default_rng(0).normal(size=(20, 8))
    for solver in PROBE_SOLVERS:  # imports and first calls outside the timings
        probe_r2(warm, warm, warm, warm, POSITIONS, solver)
    rows = []
    for n in frames:
        rng = np.random.default_rng(n)
        x = rng.normal(size=(n + test_frames, features)).astype(np.float32)
        state = rng.normal(size=(n + test_frames, 8))
        state[:, POSITIONS] += x[:, :16] @ rng.normal(size=(16, 4))
        seconds, r2 = {}, {}
        for solver in PROBE_SOLVERS:
            start = cpu_seconds()
            r2[solver] = probe_r2(x[:n], state[:n], x[n:], state[n:], POSITIONS, solver)
            seconds[solver] = cpu_seconds() - start
        gap = max(abs(r2["eigen"][k] - r2["ridgecv"][k]) for k in r2["eigen"])
        rows.append(
            [
                n,
                features,
                seconds["ridgecv"],
                seconds["eigen"],
                f"{seconds['eigen'] / seconds['ridgecv']:.2f}" if seconds["ridgecv"] else "-",
                f"{gap:.1e}",
            ]
        )
    print_table(
        "one probe (4 positions), CPU seconds, 1 thread",
        ["training frames", "features", "ridgecv (old)", "eigen (new)", "new/old", "max |R² gap|"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-tree", type=Path, help="a checkout of the old code (git worktree add)")
    parser.add_argument("--episodes", type=int, default=100, help="training episodes generated")
    parser.add_argument("--test-episodes", type=int, default=30, help="test episodes generated")
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps of each pretext run")
    parser.add_argument(
        "--probe-frames",
        default="1500,4100",
        help="training frames of the probe timings at the encoder's width, comma-separated ('' for none)",
    )
    parser.add_argument("--run-slice", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.update(ONE_THREAD)  # before numpy loads its BLAS
    if args.run_slice is not None:
        run_slice(args.run_slice, args.result, args.episodes, args.test_episodes, args.steps)
        return
    if args.old_tree is None or not (args.old_tree / "airhockey").is_dir():
        parser.error(
            "--old-tree must be a checkout of the old code, e.g. 'git worktree add /tmp/old bb8e802'"
        )
    out = Path(tempfile.mkdtemp(prefix="study-slice-"))
    print(f"the runs and their results (old.json, new.json) go to {out}/", flush=True)
    old = launch(args.old_tree.resolve(), out / "old", args)
    new = launch(Path(__file__).resolve().parents[1], out / "new", args)
    report(new, old)
    if args.probe_frames:
        probe_shapes(tuple(int(n) for n in args.probe_frames.split(",")))


if __name__ == "__main__":
    main()
