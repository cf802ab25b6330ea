"""The effect of a numeric precision on a finished comparison's runs: accuracy and cost, paired run by run.

    python benchmarks/precision_effect.py runs/bench_cpu3/leftright/compare --runs 8 --precision bf16

Draws up to ``--runs`` of the comparison's tested classifier runs at each k (seeded, spread over
the arms), and runs each of them again twice in this process with one torch thread, as the
comparison's workers run them: once as recorded (fp32: the record must come back, which checks
that the rerun is the same run) and once at ``--precision``, with the same episodes, initial
weights, frame order and dropout; the two in turns, so that neither always runs first. Prints,
per k, the mean test accuracy of both, their paired difference (``--precision`` minus fp32) with
a 95% t interval over the runs, how many fp32 reruns reproduced their record's accuracy exactly,
and the CPU seconds of each with the ratio.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from common import print_table

from airhockey.learn.device import cpu_has_bf16
from airhockey.learn.protocol.rerun import StoredComparison
from airhockey.learn.protocol.stats import mean_ci


def sample(records: list[dict], k: int, most: int, rng: np.random.Generator) -> list[dict]:
    """Up to ``most`` of the tested records at ``k``, one arm after another in a seeded order."""
    by_arm: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record["context_frames"] == k:
            by_arm[record["arm"]].append(record)
    for runs in by_arm.values():
        rng.shuffle(runs)
    arms = sorted(by_arm)
    rng.shuffle(arms)
    chosen: list[dict] = []
    while len(chosen) < most and any(by_arm[a] for a in arms):
        for arm in arms:
            if by_arm[arm] and len(chosen) < most:
                chosen.append(by_arm[arm].pop())
    return chosen


def timed(stored: StoredComparison, record: dict, precision: str) -> tuple[dict, float]:
    """The record of ``record``'s run at ``precision``, and its CPU seconds."""
    start = time.process_time()
    again = stored.run(record, precision=precision)
    return again, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path, help="a comparison's report folder (compare.json, runs.jsonl)")
    parser.add_argument("--runs", type=int, default=8, help="runs drawn at each k (default 8)")
    parser.add_argument("--precision", default="bf16", help="the precision against fp32 (default bf16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw of runs")
    parser.add_argument("--ks", default="", help="the k to measure, e.g. 1,4 (default: every k run)")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2 (an interval needs two runs)")
    if args.precision == "bf16" and not cpu_has_bf16():
        parser.error("this CPU has no bfloat16 instructions: --precision bf16 cannot run here")
    torch.set_num_threads(1)
    stored = StoredComparison.open(args.report)
    tested = stored.tested()
    if not tested:
        parser.error(f"{args.report} holds no tested run yet")
    rng = np.random.default_rng(args.seed)
    rows = []
    ks = sorted({r["context_frames"] for r in tested})
    if args.ks:
        wanted = sorted({int(k) for k in args.ks.split(",")})
        if not set(wanted) <= set(ks):
            parser.error(f"--ks {args.ks}: the comparison's tested runs have k = {ks}")
        ks = wanted
    for k in ks:
        runs = sample(tested, k, args.runs, rng)
        fp32, other, same, seconds = [], [], 0, defaultdict(float)
        for i, record in enumerate(runs, 1):
            if i % 2:  # alternate which precision runs first: neither always pays the warm-up
                base, s_base = timed(stored, record, "fp32")
                new, s_new = timed(stored, record, args.precision)
            else:
                new, s_new = timed(stored, record, args.precision)
                base, s_base = timed(stored, record, "fp32")
            same += base["accuracy"] == record["accuracy"]
            fp32.append(base["accuracy"])
            other.append(new["accuracy"])
            seconds["fp32"] += s_base
            seconds[args.precision] += s_new
            print(
                f"k = {k}, run {i}/{len(runs)} ({record['arm']}, {record['labelled_episodes']} episodes, "
                f"draw {record['repeat'] + 1}): fp32 {base['accuracy']:.4f} (recorded "
                f"{record['accuracy']:.4f}), {args.precision} {new['accuracy']:.4f}",
                flush=True,
            )
        diff, ci = mean_ci([b - a for a, b in zip(fp32, other, strict=True)])
        interval = f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else "n/a"
        rows.append(
            [
                k,
                len(runs),
                f"{100 * np.mean(fp32):.2f}%",
                f"{100 * np.mean(other):.2f}%",
                f"{100 * diff:+.2f} {interval}",
                f"{same}/{len(runs)}",
                seconds["fp32"],
                seconds[args.precision],
                f"{seconds[args.precision] / seconds['fp32']:.2f}",
            ]
        )
    print_table(
        f"{args.precision} against fp32 on the runs of {args.report} (1 thread, CPU seconds, same run)",
        [
            "k",
            "runs",
            "fp32 accuracy",
            f"{args.precision} accuracy",
            "difference, points [95% CI]",
            "fp32 reproduced",
            "fp32 CPU s",
            f"{args.precision} CPU s",
            "ratio",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
