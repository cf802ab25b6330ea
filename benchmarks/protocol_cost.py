"""The cost of a benchmark (``airhockey learn benchmark``), stage by stage, from its own records.

    python benchmarks/protocol_cost.py runs/bench_cpu [--limit-minutes 150]

Reads ``leaderboard.json`` (or, for a benchmark still running, ``benchmark.json``: the stages'
wall seconds so far), each pretext run's ``metrics.json`` (its steps and training seconds) and
the comparison's ``runs.jsonl`` (every classifier run's training seconds and, where recorded,
its wall seconds with testing), and prints one table: what each part took, the search's and
the main runs' seconds per k and budget with their medians, each arm's share of the classifier
runs' seconds, and the whole run's wall time against the limit it is sized for (the ratio must
stay below 1).
Timings are those of the run itself, on whatever else the machine was doing then.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from common import print_table

from airhockey.learn.protocol.leaderboard import read_leaderboard
from airhockey.records import read_json_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a benchmark folder (OUT of 'airhockey learn benchmark')")
    parser.add_argument(
        "--limit-minutes", type=float, default=150.0, help="the wall-time limit it is sized for"
    )
    args = parser.parse_args()
    seconds = stage_seconds(args.run)
    rows: list[list[object]] = []
    for stage in ("generate", "pretext", "compare"):
        rows.append([f"stage: {stage}", "", seconds.get(stage, 0.0), "" if stage in seconds else "not done"])
    for metrics in sorted((args.run / "pretext").glob("*/metrics.json")):
        m = json.loads(metrics.read_text())
        rows.append(
            [
                f"pretext {metrics.parent.name}",
                f"{m['steps']} steps",
                m["train_seconds_this_session"],
                f"{m['parameters']:,} parameters",
            ]
        )
    runs = [
        json.loads(line)
        for line in (args.run / "compare" / "runs.jsonl").read_text().splitlines()
        if line.strip()
    ]
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    by_arm: dict[str, float] = defaultdict(float)
    for r in runs:
        kind = f"{'search' if r.get('search') else 'main'}, k = {r['context_frames']}"
        groups[(kind, r["labelled_episodes"])].append(r)
        by_arm[r["arm"]] += r.get("seconds", r["train_seconds"])
    for (kind, budget), group in sorted(groups.items()):
        train = [r["train_seconds"] for r in group]
        # "seconds" (training and testing, wall clock) is in records written since it was added.
        wall = [r["seconds"] for r in group if "seconds" in r]
        note = f"median {statistics.median(train):.1f} s training"
        if wall:
            note += f", {statistics.median(wall):.1f} s with testing"
        rows.append([f"classifier runs, {kind}, {budget} episodes", f"{len(group)} runs", sum(train), note])
    every = sum(by_arm.values())
    for arm, spent in sorted(by_arm.items(), key=lambda item: -item[1]):
        rows.append([f"classifier runs of {arm}", "", spent, f"{spent / every:.0%} of the runs' seconds"])
    total = sum(seconds.values())
    rows.append(
        [
            "whole run (wall)",
            "",
            total,
            f"{total / 60:.1f} min = {total / 60 / args.limit_minutes:.2f} of {args.limit_minutes:g}",
        ]
    )
    print_table(f"protocol cost of {args.run}", ["part", "count", "seconds", "note"], rows)


def stage_seconds(run: Path) -> dict[str, float]:
    """Each stage's wall seconds: the finished benchmark's (``leaderboard.json``), else those its
    calls recorded so far in ``benchmark.json`` (a stage not begun left out)."""
    if (run / "leaderboard.json").is_file():
        return read_leaderboard(run).seconds
    sessions = read_json_file(run / "benchmark.json").get("sessions", [])
    out: dict[str, float] = defaultdict(float)
    for session in sessions:
        for stage, value in session.get("seconds", {}).items():
            out[stage] += value
    return dict(out)


if __name__ == "__main__":
    main()
