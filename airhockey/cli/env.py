"""``airhockey env``: the AirHockey-v0 environment."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

import airhockey
from airhockey.cli.common import VideoHelp, user_errors

env_app = typer.Typer(help="The AirHockey-v0 environment.", no_args_is_help=True)


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
    out: Annotated[Path, typer.Option(help=VideoHelp)] = Path("preview.mp4"),
    policy: Annotated[
        str,
        typer.Option(
            help="'random', 'bundled' or 'bundled-all' (the shipped agents) or the path of a saved agent."
        ),
    ] = "random",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to play, one after another.")] = 3,
    seed: Annotated[int, typer.Option(help="Reset seed of the first episode; the next ones follow.")] = 0,
    width: Annotated[int, typer.Option(min=16, help="Frame width in pixels.")] = 256,
    height: Annotated[int, typer.Option(min=16, help="Frame height in pixels.")] = 256,
    camera: Annotated[str, typer.Option(help="Camera: 'top' or 'perspective'.")] = "top",
    targets: Annotated[str, typer.Option(help="Target buttons: 'leftright' or 'all'.")] = "leftright",
) -> None:
    """Play a few episodes and write them as one video."""
    import gymnasium as gym

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
        loaded.check_targets(targets)
        act = lambda obs: loaded.predict(obs, deterministic=True)[0]  # noqa: E731
    summaries = play_episodes(act, episodes, seed, render=True, env_kwargs=env_kwargs)
    frames = [frame for s in summaries for frame in s.frames]
    fps = gym.make(airhockey.ENV_ID).unwrapped.metadata["render_fps"]
    write_video(frames, out, fps=fps)
    for s in summaries:
        typer.echo(f"seed {s.seed}: target {s.target}, hit {s.hit_button}, {s.length} steps")
    typer.echo(f"wrote {out} ({len(frames)} frames)")
