"""The ``airhockey`` command line: one sub-app per pipeline stage, each command a thin wrapper.

Heavy imports (MuJoCo, torch, stable-baselines3, h5py) happen inside the commands, so that
``airhockey --help`` is instant.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

import airhockey
from airhockey.errors import UserError

app = typer.Typer(
    help="Air hockey in MuJoCo: environment, agent, labelled video datasets, representation learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
env_app = typer.Typer(help="The AirHockey-v0 environment.", no_args_is_help=True)
app.add_typer(env_app, name="env")
agent_app = typer.Typer(help="Train, evaluate and record the PPO agent.", no_args_is_help=True)
app.add_typer(agent_app, name="agent")
data_app = typer.Typer(help="Inspect, verify and preview generated datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
learn_app = typer.Typer(
    help="Self-supervised pretext training and direction classifiers.", no_args_is_help=True
)
app.add_typer(learn_app, name="learn")

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turns a user's mistake (UserError, ValueError, a missing file) into one line on stderr, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UserError, ValueError, FileNotFoundError, FileExistsError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------------------- env
@env_app.command("info")
@user_errors
def env_info() -> None:
    """Print the environment's id, spaces, timing and keyword arguments with their defaults."""
    import gymnasium as gym

    from airhockey.envs import AirHockeyEnv

    spec = gym.spec(airhockey.ENV_ID)
    env = gym.make(airhockey.ENV_ID)
    unwrapped = env.unwrapped
    cameras = [unwrapped.model.camera(i).name for i in range(unwrapped.model.ncam)]
    lines = [
        f"id:                 {spec.id}",
        f"entry point:        {spec.entry_point}",
        f"max episode steps:  {spec.max_episode_steps}",
        f"control step (dt):  {unwrapped.dt:.3f} s ({unwrapped.frame_skip} physics steps)",
        f"render modes:       {AirHockeyEnv.metadata['render_modes']}",
        f"cameras:            {cameras}",
        f"action space:       {env.action_space}",
        f"observation space:  {env.observation_space}",
        "keyword arguments:",
    ]
    for name, param in inspect.signature(AirHockeyEnv.__init__).parameters.items():
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            lines.append(f"  {name:<24}= {param.default!r}")
    env.close()
    typer.echo("\n".join(lines))


@env_app.command("preview")
@user_errors
def env_preview(
    out: Annotated[Path, typer.Option(help="Video file to write: .mp4 or .gif.")] = Path("preview.mp4"),
    policy: Annotated[
        str, typer.Option(help="'random', 'bundled' (the shipped agent) or the path of a saved agent.")
    ] = "random",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to play, one after another.")] = 3,
    seed: Annotated[int, typer.Option(help="Reset seed of the first episode; the next ones follow.")] = 0,
    width: Annotated[int, typer.Option(min=16, help="Frame width in pixels.")] = 256,
    height: Annotated[int, typer.Option(min=16, help="Frame height in pixels.")] = 256,
    camera: Annotated[str, typer.Option(help="Camera: 'top' or 'perspective'.")] = "top",
    targets: Annotated[str, typer.Option(help="Target buttons: 'leftright' or 'all'.")] = "leftright",
) -> None:
    """Play a few episodes and write them as one video."""
    from airhockey.envs.rollout import play_episodes, random_policy
    from airhockey.video import check_video_path, write_video

    check_video_path(out)
    env_kwargs = {"width": width, "height": height, "camera_name": camera, "target_buttons": targets}
    if policy == "random":
        from gymnasium.spaces import Box

        act = random_policy(Box(-1.0, 1.0, (2,)), seed)
    else:
        from airhockey.agents import load_policy

        loaded = load_policy(policy)
        act = lambda obs: loaded.predict(obs, deterministic=True)[0]  # noqa: E731
    summaries = play_episodes(act, episodes, seed, render=True, env_kwargs=env_kwargs)
    frames = [frame for s in summaries for frame in s.frames]
    import gymnasium as gym

    fps = gym.make(airhockey.ENV_ID).unwrapped.metadata["render_fps"]
    write_video(frames, out, fps=fps)
    for s in summaries:
        typer.echo(f"seed {s.seed}: target {s.target}, hit {s.hit_button}, {s.length} steps")
    typer.echo(f"wrote {out} ({len(frames)} frames)")


# --------------------------------------------------------------------------------------- agent
# (agent commands: train, eval, record)


# --------------------------------------------------------------------------------------- generate / data
# (generate command and data commands: verify, inspect, preview)


# --------------------------------------------------------------------------------------- learn
# (learn commands: pretext, predict, classify, compare; and pipeline)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="airhockey")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
