"""PPO on AirHockey-v0 from scratch, with the committed hyperparameters: speed and learning curve.

Prints three tables. First, environment steps per second with 1 and 2 workers: stepping the
training environments alone (random actions), and short PPO training runs (evaluations
excluded). Second, a training run from scratch: validation success rate against env steps and
wall-clock time, evaluations included in the time. Third, its final and best models on the
held-out seeds (1,000,000 up), which the issue's targets are about.

    python benchmarks/agent_training.py [--timesteps 500000] [--workers 1] [--seed 0] [--out RUN]
        [--eval-every 20480] [--eval-episodes 100] [--held-out 500]
        [--speed-steps 16384] [--speed-repeats 3] [--skip-speed]

With ``--out`` the run from scratch is kept there (a run folder, as ``airhockey agent train``
writes it); for a given seed it is the same run as ``agent train`` with the same settings.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import interleaved_rates, print_table

from airhockey.agents import TrainConfig, evaluate, load_hyperparams, load_policy, train
from airhockey.agents.vec_env import training_venv


def vec_env_rates(n_envs: int, steps: int) -> dict[int, float]:
    """Env steps/s of the training environments (as training makes them) alone, random actions,
    with 1 and 2 workers timed in turn (best of 5)."""
    venvs = {workers: training_venv(n_envs, "leftright", workers) for workers in (1, 2)}
    try:
        actions = np.random.default_rng(0).uniform(-1, 1, (n_envs, 2)).astype(np.float32)
        for venv in venvs.values():
            venv.seed(0)
            venv.reset()
        steps_of = {workers: (lambda v=venv: v.step(actions)) for workers, venv in venvs.items()}
        rates = interleaved_rates(steps_of, max(1, steps // n_envs))
        return {workers: r * n_envs for workers, r in rates.items()}
    finally:
        for venv in venvs.values():
            venv.close()


def training_rates(tmp: Path, steps: int, seed: int, repeats: int) -> dict[int, list[float]]:
    """Env steps/s of short PPO training runs (evaluations excluded), 1 and 2 workers in turn."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    for k in range(repeats):
        for workers in rates:
            config = TrainConfig(
                out=tmp / f"speed{workers}-{k}",
                timesteps=steps,
                workers=workers,
                seed=seed,
                eval_every=0,
                eval_episodes=1,
                progress_bar=False,
            )
            rates[workers].append(train(config, command="benchmark").steps_per_second)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=500_000, help="env steps of the full run; 0: none")
    parser.add_argument("--workers", type=int, default=1, help="workers of the full run")
    parser.add_argument("--speed-steps", type=int, default=16_384, help="env steps of each speed run")
    parser.add_argument("--eval-every", type=int, default=20_480, help="env steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=100, help="validation episodes per evaluation")
    parser.add_argument(
        "--held-out", type=int, default=500, help="held-out episodes for the final and best models"
    )
    parser.add_argument("--speed-repeats", type=int, default=3, help="PPO speed runs per worker count")
    parser.add_argument("--skip-speed", action="store_true", help="only the run from scratch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="keep the run from scratch in this (new) folder")
    args = parser.parse_args()
    n_envs = load_hyperparams().n_envs

    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_speed:
            env_only = vec_env_rates(n_envs, args.speed_steps)
            training = training_rates(Path(tmp), args.speed_steps, args.seed, args.speed_repeats)
            print_table(
                f"AirHockey-v0 env steps/s, {n_envs} envs, committed hyperparameters; vec env: best of 5, "
                f"PPO training: median and range of {args.speed_repeats} runs of {args.speed_steps:,} steps",
                ["workers", "vec env alone", "PPO training", "range", "training vs 1 worker (medians)"],
                [
                    [
                        workers,
                        env_only[workers],
                        float(np.median(training[workers])),
                        f"{min(training[workers]):,.0f}-{max(training[workers]):,.0f}",
                        f"{np.median(training[workers]) / np.median(training[1]):.2f}",
                    ]
                    for workers in (1, 2)
                ],
            )

        if not args.timesteps:
            return
        config = TrainConfig(
            out=args.out or Path(tmp) / "run",
            timesteps=args.timesteps,
            workers=args.workers,
            seed=args.seed,
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes,
            progress_bar=False,
        )
        summary = train(config, command="benchmark")
        last, best = summary.rows[-1], summary.best
        held_out = []
        for name, folder, steps, wall in (
            ("final", summary.run_dir, last.timesteps, last.wall_seconds),
            ("best on validation", summary.run_dir / "best", int(best["timesteps"]), best["wall_seconds"]),
        ):
            result = evaluate(load_policy(folder), args.held_out)
            low, high = result.interval
            held_out.append(
                [name, f"{steps:,}", wall / 60, f"{result.success_rate:.1%}", f"[{low:.1%}, {high:.1%}]"]
            )
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
    print_table(
        f"the run's models on {args.held_out} held-out episodes (seeds 1,000,000 up)",
        ["model", "env steps", "wall minutes", "success rate", "95% interval"],
        held_out,
    )
    reached = next((r for r in summary.rows if r.success_rate >= 0.95), None)
    if reached is None:
        print(f"\nnever reached 95% success in {summary.timesteps:,} steps")
    else:
        print(
            f"\nfirst at >= 95% validation: {reached.timesteps:,} steps, "
            f"{reached.wall_seconds / 60:.1f} minutes"
        )


if __name__ == "__main__":
    main()
