"""How often a policy hits the button it aims at, per button, on held-out reset seeds.

    python benchmarks/policy_per_button.py --policy scripted --first-seed 1000 --seeds 400

Each of the five buttons is the forced target of one episode per seed (``first_seed`` on), in an
env of ``target_buttons="all"`` (with ``--layout train|test``, on moved buttons). Prints one
Markdown table: per button, the hits of that button, the episodes, the rate and its Wilson 95%
interval. Seeds 0-199 tuned the scripted controller; report on others.
"""

from __future__ import annotations

import argparse

import numpy as np

from airhockey.agents.evaluation import wilson_interval
from airhockey.envs import N_BUTTONS
from airhockey.generate.policy import load_policy
from airhockey.generate.rollout import AttemptPlan, make_env, play_lockstep


def per_button(spec: str, seeds: range, layout: str | None = None, envs: int = 32) -> np.ndarray:
    """(5, 6) episode counts: row = target button, column = hit button 0-4, then none."""
    kwargs = {"target_buttons": "all", **({"layout": layout} if layout else {})}
    plans = iter([AttemptPlan(seed, button) for button in range(N_BUTTONS) for seed in seeds])
    counts = np.zeros((N_BUTTONS, N_BUTTONS + 1), dtype=np.int64)
    played = [make_env(kwargs) for _ in range(envs)]
    for attempt in play_lockstep(played, load_policy(spec), lambda: next(plans, None)):
        counts[attempt.target, attempt.hit_button] += 1  # -1 (none) is the last column
    for env in played:
        env.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="scripted")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=400)
    parser.add_argument("--layout", choices=("train", "test"), default=None)
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    counts = per_button(args.policy, seeds, args.layout)
    where = f", layouts {args.layout}" if args.layout else ""
    print(f"policy {args.policy}, seeds {seeds.start}-{seeds.stop - 1}{where}\n")
    print("| button | hits | episodes | rate | Wilson 95% interval |")
    print("|---|---|---|---|---|")
    for button, row in enumerate(counts):
        hits, total = int(row[button]), int(row.sum())
        low, high = wilson_interval(hits, total)
        print(f"| {button} | {hits} | {total} | {hits / total:.1%} | {low:.1%}-{high:.1%} |")


if __name__ == "__main__":
    main()
