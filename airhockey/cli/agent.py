"""``airhockey agent``: train, evaluate and record the PPO agent; defaults are ``TrainConfig``'s."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from airhockey.agents.config import EVAL_SEED, TRAIN_SEED_BASE, TrainConfig
from airhockey.cli.common import TargetsOption, VideoHelp, user_errors
from airhockey.cli.env import env_preview

agent_app = typer.Typer(help="Train, evaluate and record the PPO agent.", no_args_is_help=True)

PolicyOption = Annotated[
    str | None,
    typer.Option(
        help="'bundled' or 'bundled-all' (the shipped agents, for targets leftright and all), a run "
        "folder (this package's or rl-baselines3-zoo's) or a model .zip; default: the bundled agent for "
        "--targets. "
        "Loading unpickles the files, which can run code: pass only files you trust.",
        show_default=False,
    ),
]


@agent_app.command("train")
@user_errors
def agent_train(
    out: Annotated[Path, typer.Option(help="Run folder to create, or with --resume to continue.")],
    timesteps: Annotated[
        int, typer.Option(min=1, help="Environment steps, all sessions.")
    ] = TrainConfig.timesteps,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes stepping the envs, this one included (see docs/agent.md).")
    ] = TrainConfig.workers,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of network, sampling and training envs.")
    ] = TrainConfig.seed,
    targets: TargetsOption = TrainConfig.target_buttons,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its last checkpoint.")
    ] = TrainConfig.resume,
    device: Annotated[
        str, typer.Option(help="Torch device; 'cpu' runs are reproducible.")
    ] = TrainConfig.device,
    eval_every: Annotated[
        int, typer.Option(min=0, help="Steps between evaluations and checkpoints; 0: at start and end only.")
    ] = TrainConfig.eval_every,
    eval_episodes: Annotated[
        int, typer.Option(min=1, help="Episodes per evaluation.")
    ] = TrainConfig.eval_episodes,
    hp: Annotated[
        list[str] | None,
        typer.Option(
            help="Override a hyperparameter (a PPOHyperparams field, see docs/agent.md): NAME=VALUE; "
            "repeatable."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = TrainConfig.progress_bar,
) -> None:
    """Train PPO into a run folder: config, command, eval CSV, curve, checkpoints, model and stats,
    and TensorBoard logs in tb/ with the 'tensorboard' extra."""
    from airhockey.agents import load_hyperparams, train
    from airhockey.learn.device import check_device
    from airhockey.tblog import available

    check_device(device)  # stable-baselines3 would fall back to the CPU without a word
    config = TrainConfig(
        out=out,
        timesteps=timesteps,
        workers=workers,
        seed=seed,
        target_buttons=targets,
        device=device,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        resume=resume,
        progress_bar=progress,
        hyperparams=load_hyperparams().with_overrides(hp or []),
    )
    summary = train(config)
    last = summary.rows[-1]
    typer.echo(
        f"trained {summary.timesteps:,} steps in {summary.wall_seconds / 60:.1f} min "
        f"({summary.steps_per_second:,.0f} steps/s); validation success {last.success_rate:.1%} "
        f"[{last.success_low:.1%}, {last.success_high:.1%}]"
    )
    best = summary.best
    typer.echo(
        f"best validation success {best['success_rate']:.1%} at {int(best['timesteps']):,} steps "
        f"({best['wall_seconds'] / 60:.1f} min): {out}/best/ (load it with --policy {out}/best)"
    )
    logs = ", tb/" if available() else ""
    typer.echo(
        f"wrote {out}/ (model.zip, model_vecnormalize.pkl, model_actor.npz, best/, eval.csv, curve.png{logs})"
    )


@agent_app.command("eval")
@user_errors
def agent_eval(
    policy: PolicyOption = None,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes, one seed each.")] = 100,
    seed: Annotated[
        int,
        typer.Option(
            min=0, help=f"First reset seed; training resets its envs with seeds {TRAIN_SEED_BASE:,} up only."
        ),
    ] = EVAL_SEED,
    targets: TargetsOption = TrainConfig.target_buttons,
) -> None:
    """Print the success rate (95% interval), the target x hit-button table and the mean length."""
    from airhockey.agents import evaluate, load_policy
    from airhockey.agents.files import bundled_for

    loaded = load_policy(policy or bundled_for(targets))
    result = evaluate(loaded, episodes, seed, targets)
    typer.echo(f"policy:          {loaded.name} (sha256 {loaded.sha256})")
    typer.echo(f"targets:         {targets}")
    typer.echo(result.report())


@agent_app.command("record")
@user_errors
def agent_record(
    policy: PolicyOption = None,
    out: Annotated[Path, typer.Option(help=VideoHelp)] = Path("agent.mp4"),
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to play, one after another.")] = 3,
    seed: Annotated[int, typer.Option(help="Reset seed of the first episode; the next ones follow.")] = 0,
    targets: TargetsOption = TrainConfig.target_buttons,
) -> None:
    """Play a few episodes with an agent and write them as one video (256x256, top camera)."""
    from airhockey.agents.files import bundled_for

    env_preview(out=out, policy=policy or bundled_for(targets), episodes=episodes, seed=seed, targets=targets)
