"""PPO on AirHockey-v0 from scratch, with the committed hyperparameters: speed and learning curve.

Prints two tables. First, environment steps per second with 1 and 2 workers: stepping the
training environments alone (random actions), and short PPO training runs (evaluations
excluded). Second, a training run from scratch: validation success rate against env steps and
wall-clock time, evaluations included in the time.

    python benchmarks/agent_training.py [--timesteps 500000] [--workers 1] [--speed-steps 16384]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import print_table, rate

from airhockey.agents import TrainConfig, load_hyperparams, train
from airhockey.agents.vec_env import ParallelVecEnv, env_fns


def vec_env_rate(workers: int, n_envs: int, steps: int) -> float:
    """Env steps/s of the training environments alone, stepped with random actions."""
    venv = ParallelVecEnv(env_fns(n_envs, "leftright"), workers)
    try:
        venv.seed(0)
        venv.reset()
        actions = np.random.default_rng(0).uniform(-1, 1, (n_envs, 2)).astype(np.float32)
        return rate(lambda: venv.step(actions), max(1, steps // n_envs)) * n_envs
    finally:
        venv.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=500_000, help="env steps of the full run")
    parser.add_argument("--workers", type=int, default=1, help="workers of the full run")
    parser.add_argument("--speed-steps", type=int, default=16_384, help="env steps of each speed run")
    parser.add_argument("--eval-every", type=int, default=20_480, help="env steps between evaluations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_envs = load_hyperparams().n_envs

    with tempfile.TemporaryDirectory() as tmp:
        speed_rows = []
        for workers in (1, 2):
            env_only = vec_env_rate(workers, n_envs, args.speed_steps)
            config = TrainConfig(
                out=Path(tmp) / f"speed{workers}",
                timesteps=args.speed_steps,
                workers=workers,
                seed=args.seed,
                eval_every=0,
                eval_episodes=1,
                progress_bar=False,
            )
            speed_rows.append([workers, env_only, train(config, command="benchmark").steps_per_second])
        for row in speed_rows:
            row.append(f"{row[2] / speed_rows[0][2]:.2f}")
        print_table(
            f"AirHockey-v0 env steps/s, {n_envs} envs, committed hyperparameters",
            ["workers", "vec env alone", "PPO training", "training vs 1 worker"],
            speed_rows,
        )

        config = TrainConfig(
            out=Path(tmp) / "run",
            timesteps=args.timesteps,
            workers=args.workers,
            seed=args.seed,
            eval_every=args.eval_every,
            progress_bar=False,
        )
        summary = train(config, command="benchmark")
    rows = [
        [
            f"{r.timesteps:,}",
            r.wall_seconds / 60,
            f"{r.success_rate:.1%}",
            f"[{r.success_low:.1%}, {r.success_high:.1%}]",
            f"{r.mean_length:.1f}",
        ]
        for r in summary.rows
    ]
    print_table(
        f"PPO from scratch, {args.workers} workers, seed {args.seed}, "
        f"{config.eval_episodes} validation episodes per row; {summary.steps_per_second:,.0f} steps/s",
        ["env steps", "wall minutes", "success rate", "95% interval", "mean length"],
        rows,
    )
    reached = next((r for r in summary.rows if r.success_rate >= 0.95), None)
    if reached is None:
        print(f"\nnever reached 95% success in {summary.timesteps:,} steps")
    else:
        print(f"\nfirst at >= 95%: {reached.timesteps:,} steps, {reached.wall_seconds / 60:.1f} minutes")


if __name__ == "__main__":
    main()
